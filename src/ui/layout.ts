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
/** Labels keep this far from the chart's edges. */
const EDGE = 4;
const ALERT_LABEL_CHARS = 56;
const DEPLOY_LABEL_CHARS = 44;
const LANE_NAME_PX = 14;

/**
 * How wide a text is drawn, in em, estimated per character from a wide sans-serif in bold (DejaVu Sans, the
 * widest of the usual ones; a selected label turns bold). The server cannot measure the browser's font: the
 * estimate only spaces labels apart. Keeping them on the chart does not depend on it (see Label.anchor).
 */
function charEm(c: string): number {
  if (c.charCodeAt(0) > 0x7e) return 1;
  if (/[ijlI!.,:;'|` ]/.test(c)) return 0.36;
  if (/[frt()[\]/{}-]/.test(c)) return 0.48;
  if (/[mwMW@%]/.test(c)) return 1.05;
  if (/[A-Z0-9#&]/.test(c)) return 0.76;
  return 0.66;
}

/** The estimated width of `text` at `px` pixels. */
export function textWidth(text: string, px = 12): number {
  let em = 0;
  for (const c of text) em += charEm(c);
  return em * px;
}

/** `text`, cut with an ellipsis to fit `width` pixels at `px`. */
function fitText(text: string, width: number, px = 12): string {
  if (textWidth(text, px) <= width) return text;
  const chars = Array.from(text);
  while (chars.length > 1 && textWidth(`${chars.join('')}…`, px) > width) chars.pop();
  return `${chars.join('')}…`;
}

/**
 * A label's text and where it is anchored: `start` at x (it runs right), or `end` at x (it runs left). A label
 * that would run past the chart's right edge is anchored by its end at the edge, so the browser keeps all of it
 * on the chart whatever the font's real width.
 */
export interface Label {
  text: string;
  x: number;
  y: number;
  anchor: 'start' | 'end';
}

/** Where a label reaches, by the estimate. */
export function labelSpan(label: Pick<Label, 'text' | 'x' | 'anchor'>): [number, number] {
  const width = textWidth(label.text);
  return label.anchor === 'start' ? [label.x, label.x + width] : [label.x - width, label.x];
}

export const PAGED_GLYPH: Record<Paged, string> = {
  author: '●',
  oncall: '■',
  ambiguous: '◆',
  shadow: '○',
  nobody: '·',
};

export interface PlacedDeploy {
  d: TimelineDeploy;
  x: number;
  y: number;
  /** Undefined when there is no room for a label; the marker's title still says everything. */
  label?: Label;
}

export interface PlacedAlert {
  a: TimelineAlert;
  x1: number;
  x2: number;
  /** Top of the bar. */
  y: number;
  label: Label;
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

/** An arc from a rollback's marker to the marker of a deploy it undid, both in view. */
export interface PlacedUndo {
  rollback: TimelineDeploy;
  undone: TimelineDeploy;
  x1: number;
  x2: number;
  y: number;
}

export interface PlacedLane {
  lane: Lane;
  /** The lane's name, cut to fit the gutter. */
  name: string;
  top: number;
  height: number;
  deploys: PlacedDeploy[];
  alerts: PlacedAlert[];
  lines: PlacedLine[];
  undos: PlacedUndo[];
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
          : a.paged === 'nobody'
            ? 'nobody paged'
            : 'on-call paged';
  return `${PAGED_GLYPH[a.paged]} ${a.alertname} · ${who}`;
}

/** Who made the changes of a deploy, in a few words: "Alice", "Alice, Bob", "Alice, Bob and 3 more". */
export function authorsText(d: TimelineDeploy): string {
  const names = [...new Set(d.authors.map(personName))];
  const more = d.changeCount > d.deploy.changes.length ? ' and more' : '';
  if (names.length <= 2) return `${names.join(', ')}${more}`;
  return `${names.slice(0, 2).join(', ')} and ${names.length - 2}${more ? '+' : ''} more`;
}

export function deployLabel(d: TimelineDeploy): string {
  // A deploy is named by its version; a flag or config change by what changed; a rollback says so.
  const what = d.kind === 'deploy' ? d.deploy.version : d.what;
  if (d.deploy.rollback) return `↩ rollback to ${what}`;
  return `${what} · ${authorsText(d)} · ${d.deploy.stage}`;
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
  // it when that crosses no other marker and stays clear of the lane names; else cut to the room on the right,
  // held by its end at the edge. One that fits nowhere is left out (the marker's title and the table still say
  // everything).
  const levelEnd = [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY];
  const markerY = top + 14;
  const right = CHART_WIDTH - EDGE;
  const inRange = lane.deploys.filter((d) => d.inRange);
  const markers = inRange.map((d) => x(d.deploy.at));
  const deploys: PlacedDeploy[] = [];
  inRange.forEach((d, i) => {
    const mx = markers[i] as number;
    const placed: PlacedDeploy = { d, x: mx, y: markerY };
    const full = clip(deployLabel(d), DEPLOY_LABEL_CHARS);
    const width = textWidth(full);
    const gap = d.kind === 'flag' ? 15 : 10; // a flag's pennant reaches further right than a diamond
    const left = mx - 10 - width;
    const crossesMarker = markers.some((m, j) => j !== i && m >= left - 8 && m <= mx + 8);
    const candidates: Omit<Label, 'y'>[] = [];
    if (mx + gap + width <= right) candidates.push({ text: full, x: mx + gap, anchor: 'start' });
    else {
      if (left >= GUTTER + EDGE && !crossesMarker) candidates.push({ text: full, x: mx - 10, anchor: 'end' });
      const cut = fitText(full, right - (mx + gap));
      if (Array.from(cut).length >= 12) candidates.push({ text: cut, x: right, anchor: 'end' });
    }
    for (const c of candidates) {
      const [start, end] = labelSpan(c);
      const level = levelEnd.findIndex((e) => e + 8 <= start);
      if (level < 0) continue;
      placed.label = { ...c, y: top + 18 + level * 16 };
      levelEnd[level] = end;
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
    // The label starts at the bar, or ends at the chart's edge when it would run past it.
    const label: Omit<Label, 'y'> =
      x1 + textWidth(text) <= right ? { text, x: x1, anchor: 'start' } : { text, x: right, anchor: 'end' };
    const [labelStart, labelEnd] = labelSpan(label);
    let row = rowEnd.findIndex((e) => e <= Math.min(x1, labelStart));
    if (row < 0) row = rowEnd.length;
    rowEnd[row] = Math.max(x2, labelEnd) + 10;
    const y = rowsTop + row * ROW + 16;
    alerts.push({
      a,
      x1,
      x2,
      y,
      label: { ...label, y: y - 4 },
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
  const undos: PlacedUndo[] = [];
  for (const p of deploys) {
    for (const key of p.d.undid ?? []) {
      const undone = placedByKey.get(key);
      if (undone) undos.push({ rollback: p.d, undone: undone.d, x1: p.x, x2: undone.x, y: p.y });
    }
  }
  // The name sits in the gutter, left of the plot: cut to fit it.
  const name = fitText(lane.name, GUTTER - 24, LANE_NAME_PX);
  return { lane, name, top, height, deploys, alerts, lines, undos };
}
