import { clip } from './html.js';
import type { Lane, Paged, Timeline, TimelineAlert, TimelineDeploy } from './model.js';
import { personName } from './model.js';

// Geometry of the timeline chart: where each lane, deploy marker, alert bar and line goes, in the SVG's
// user units. Pure arithmetic, kept apart from the markup so the markup reads as markup.

export const CHART_WIDTH = 1200;
export const GUTTER = 172;
const RIGHT = 44;
export const AXIS_HEIGHT = 30;
const DEPLOY_TRACK = 46;
const ROW = 30;
const LANE_PAD = 10;
/** Average advance of a 12px sans-serif character: enough to keep labels from running into each other. */
const CHAR = 6.8;
const ALERT_LABEL_CHARS = 56;
const DEPLOY_LABEL_CHARS = 44;

export const PAGED_GLYPH: Record<Paged, string> = { author: '●', oncall: '■', ambiguous: '◆', shadow: '○' };

export interface PlacedDeploy {
  d: TimelineDeploy;
  x: number;
  y: number;
  /** Undefined when there is no room for a label; the marker's title still says everything. */
  label?: { text: string; x: number; y: number };
}

export interface PlacedAlert {
  a: TimelineAlert;
  x1: number;
  x2: number;
  /** Top of the bar. */
  y: number;
  label: { text: string; x: number; y: number };
  clippedLeft: boolean;
  firing: boolean;
}

export interface PlacedLine {
  alert: TimelineAlert;
  deploy: TimelineDeploy;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  /** The deploy is before the range: the line runs to the chart's left edge. */
  offscreen: boolean;
}

export interface PlacedLane {
  lane: Lane;
  top: number;
  height: number;
  deploys: PlacedDeploy[];
  alerts: PlacedAlert[];
  lines: PlacedLine[];
}

export interface Tick {
  x: number;
  at: number;
  label: string;
}

export interface ChartLayout {
  width: number;
  height: number;
  lanes: PlacedLane[];
  ticks: Tick[];
  stepMs: number;
  nowX?: number;
  plotLeft: number;
  plotRight: number;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const STEPS = [5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080].map((m) => m * MINUTE);

export function alertLabel(a: TimelineAlert): string {
  const who =
    a.paged === 'author'
      ? `paged ${a.pagedText.split(';')[0]}`
      : a.paged === 'shadow'
        ? `shadow, ${a.pagedText.split('; ').find((p) => p.startsWith('would have')) ?? 'on-call paged'}`
        : a.paged === 'ambiguous'
          ? 'ambiguous, on-call paged'
          : 'on-call paged';
  return `${PAGED_GLYPH[a.paged]} ${a.alertname} · ${who}`;
}

export function deployLabel(d: TimelineDeploy): string {
  // A deploy is named by its version; a flag or config change by what changed.
  const what = d.kind === 'deploy' ? d.deploy.version : d.what;
  const by = [...new Set(d.authors.map(personName))].join(', ');
  return `${what} · ${by} · ${d.deploy.stage}`;
}

export function layoutChart(t: Timeline): ChartLayout {
  const { from, to } = t.range;
  const plotLeft = GUTTER;
  const plotRight = CHART_WIDTH - RIGHT;
  const scale = (plotRight - plotLeft) / (to - from);
  // Tenths of a unit are finer than any screen shows, and keep the markup short.
  const x = (ms: number) => Math.round((plotLeft + (Math.min(Math.max(ms, from), to) - from) * scale) * 10) / 10;

  let top = AXIS_HEIGHT;
  const lanes = t.lanes.map((lane): PlacedLane => {
    const placed = placeLane(lane, top, x, from, to, t.now);
    top += placed.height;
    return placed;
  });

  const stepMs = STEPS.find((s) => (to - from) / s <= 10) ?? (STEPS[STEPS.length - 1] as number);
  const ticks: Tick[] = [];
  for (let at = Math.ceil(from / stepMs) * stepMs; at <= to; at += stepMs) {
    const iso = new Date(at).toISOString();
    // UTC here; the page script rewrites each label in the viewer's timezone.
    const label = stepMs >= DAY || at % DAY === 0 ? iso.slice(5, 10) : iso.slice(11, 16);
    ticks.push({ x: x(at), at, label });
  }
  // Room under the lanes for the "now" label, clear of the tick labels above.
  const layout: ChartLayout = { width: CHART_WIDTH, height: top + 22, lanes, ticks, stepMs, plotLeft, plotRight };
  if (t.now >= from && t.now <= to) layout.nowX = x(t.now);
  return layout;
}

function placeLane(
  lane: Lane,
  top: number,
  x: (ms: number) => number,
  from: number,
  to: number,
  now: number,
): PlacedLane {
  // Deploy labels on two levels beside their markers: right of it; else, near the chart's right edge, left of
  // it when that crosses no other marker; else cut to the room on the right. One that fits nowhere is left out
  // (the marker's title and the table still say everything).
  const levelEnd = [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY];
  const markerY = top + 14;
  const inRange = lane.deploys.filter((d) => d.inRange);
  const markers = inRange.map((d) => x(d.deploy.at));
  const deploys: PlacedDeploy[] = [];
  inRange.forEach((d, i) => {
    const mx = markers[i] as number;
    const placed: PlacedDeploy = { d, x: mx, y: markerY };
    const full = clip(deployLabel(d), DEPLOY_LABEL_CHARS);
    const gap = d.kind === 'flag' ? 15 : 10; // a flag's pennant reaches further right than a diamond
    const room = Math.floor((CHART_WIDTH - 4 - (mx + gap)) / CHAR);
    const left = Math.max(4, mx - 10 - full.length * CHAR);
    const crossesMarker = markers.some((m, j) => j !== i && m >= left - 8 && m <= mx + 8);
    const candidates: { text: string; x: number }[] = [];
    if (full.length <= room) candidates.push({ text: full, x: mx + gap });
    else {
      if (!crossesMarker) candidates.push({ text: full, x: left });
      if (room >= 12) candidates.push({ text: clip(full, room), x: mx + gap });
    }
    for (const c of candidates) {
      const level = levelEnd.findIndex((e) => e + 8 <= c.x);
      if (level < 0) continue;
      placed.label = { text: c.text, x: c.x, y: top + 18 + level * 16 };
      levelEnd[level] = c.x + c.text.length * CHAR;
      break;
    }
    deploys.push(placed);
  });

  // Alert rows: each alert goes to the first row where neither its bar nor its label meets the previous one.
  const rowEnd: number[] = [];
  const rowsTop = top + DEPLOY_TRACK;
  const alerts: PlacedAlert[] = [];
  for (const a of lane.alerts) {
    const start = a.episode.startsAtMs;
    const end = a.endMs ?? now;
    const x1 = x(start);
    const x2 = Math.max(x(end), x1 + 4);
    const text = clip(alertLabel(a), ALERT_LABEL_CHARS);
    const width = text.length * CHAR;
    // The label starts at the bar, or ends at the chart's edge when it would run past it.
    const lx = Math.max(4, Math.min(x1, CHART_WIDTH - 4 - width));
    let row = rowEnd.findIndex((e) => e <= Math.min(x1, lx));
    if (row < 0) row = rowEnd.length;
    rowEnd[row] = Math.max(x2, lx + width) + 10;
    const y = rowsTop + row * ROW + 16;
    alerts.push({
      a,
      x1,
      x2,
      y,
      label: { text, x: lx, y: y - 4 },
      clippedLeft: start < from,
      firing: a.endMs === undefined && end >= from && start <= to,
    });
  }
  const rows = Math.max(1, rowEnd.length);
  const height = DEPLOY_TRACK + rows * ROW + LANE_PAD;

  const byKey = new Map(lane.deploys.map((d) => [d.key, d]));
  const placedByKey = new Map(deploys.map((p) => [p.d.key, p]));
  const lines: PlacedLine[] = [];
  for (const p of alerts) {
    const deploy = p.a.deployKey === undefined ? undefined : byKey.get(p.a.deployKey);
    if (!deploy) continue;
    const marker = placedByKey.get(deploy.key);
    lines.push({
      alert: p.a,
      deploy,
      x1: p.x1,
      y1: p.y + 5,
      // A deploy outside the range: the line runs to the edge on its side (x clamps).
      x2: marker ? marker.x : x(deploy.deploy.at),
      y2: marker ? marker.y + 8 : markerY,
      offscreen: !marker,
    });
  }
  return { lane, top, height, deploys, alerts, lines };
}
