import type { AlertDelivery, PageDelivery } from '../core/delivery-status.js';
import type { DecisionEvidence, EvidenceSeries } from '../core/evidence-route.js';
import { formatValue } from '../core/judge.js';
import { PrecisionTally } from '../core/precision.js';
import { humanGap } from '../core/time.js';
import type { ProblemDetail } from '../errors.js';
import type { Caller } from '../http/auth.js';
import { clip, type Html, html, safeHref, trusted } from './html.js';
import {
  AXIS_HEIGHT,
  authorsText,
  type ChartLayout,
  deployLabel,
  GUTTER,
  type Label,
  layoutChart,
  PAGED_GLYPH,
  type PlacedLane,
} from './layout.js';
import {
  type Lane,
  type Link,
  PAGED_LABEL,
  type Paged,
  personName,
  type Timeline,
  type TimelineAlert,
  type TimelineDeploy,
} from './model.js';
import { pageHref, RANGE_PRESETS, spanText, type TimelineRange } from './range.js';

// The timeline page, rendered on the server as HTML with an inline SVG chart. No inline script or style: the
// Content-Security-Policy forbids both, and the one static script (static/timeline.js) only opens details and
// refreshes the view. Every time is written in UTC on a 24-hour clock, as the decision sentences and
// PagerDuty's incidents write them: one clock on the page, whatever the viewer's locale.

export interface AssetUrls {
  css: string;
  js: string;
  icon: string;
}

export interface PageContext {
  timeline: Timeline;
  /** Every service for the filter. */
  services: readonly string[];
  assets: AssetUrls;
  caller: Caller;
  /** GET /v1/timeline with the same range and filters: what the script polls. */
  refreshUrl: string;
  /** How often the script polls, in seconds. */
  refreshSeconds: number;
  /** How far back a view without a range looks (timeline.default_range). */
  defaultRangeMs: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** "2026-11-26 11:09 UTC", or "11:09 UTC" for a time whose day is plain from what is around it. */
function time(ms: number, format: 'datetime' | 'time' = 'datetime'): Html {
  const text = format === 'time' ? `${iso(ms).slice(11, 16)} UTC` : `${iso(ms).slice(0, 16).replace('T', ' ')} UTC`;
  return html`<time datetime="${iso(ms)}">${text}</time>`;
}

const DELIVERY_LABEL: Record<AlertDelivery['state'], string> = {
  delivered: 'delivered',
  queued: 'queued',
  retrying: 'retrying',
  failed: 'failed',
  none: 'no page',
};

function targetText(p: PageDelivery): string {
  return p.target.kind === 'person' ? p.target.email : 'on-call';
}

/**
 * One page's delivery in words (its state is the badge beside it): when it got through, or what its latest
 * attempt failed with and what happens next.
 */
function pageDeliveryText(p: PageDelivery): Html {
  const a = p.attempt;
  const failedAt = a ? html`attempt ${a.number} failed at ${time(a.at, 'time')}: <q>${a.error ?? ''}</q>` : '';
  switch (p.state) {
    case 'delivered':
      return html`via ${a?.channel ?? '?'}${p.deliveredAt === undefined ? '' : html` at ${time(p.deliveredAt, 'time')}`}${a && a.number > 1 ? `, attempt ${a.number}` : ''}`;
    case 'retrying':
      return html`${failedAt}${p.nextAt === undefined ? '' : html`; next try at ${time(p.nextAt, 'time')}`}${p.deliveredAt === undefined ? '' : html`; delivered at ${time(p.deliveredAt, 'time')} before`}`;
    case 'failed':
      return html`${failedAt}; not retried`;
    case 'queued':
      return p.deliveredAt === undefined
        ? html`not tried yet`
        : html`delivered at ${time(p.deliveredAt, 'time')}; an update is queued`;
  }
}

function deliveryBadge(d: AlertDelivery): Html {
  return html`<span class="delivery delivery-${d.state}">${DELIVERY_LABEL[d.state]}</span>`;
}

/** The table's cell: the state, and for a page in trouble what went wrong. */
function deliveryCell(d: AlertDelivery): Html {
  const trouble = d.pages.filter((p) => p.state === 'retrying' || p.state === 'failed');
  return html`${deliveryBadge(d)}${trouble.map((p) => html` <span class="delivery-why">${targetText(p)}: ${pageDeliveryText(p)}</span>`)}`;
}

/** The details' section: every page the alert is on, and how its delivery went. */
function deliveryList(d: AlertDelivery): Html {
  if (d.pages.length === 0) {
    return html`<p class="muted">On no page: it had resolved by the time changepager heard of it.</p>`;
  }
  return html`<ul class="deliveries">${d.pages.map(
    (p) =>
      html`<li><span class="delivery delivery-${p.state}">${DELIVERY_LABEL[p.state]}</span> ${targetText(p)}: ${pageDeliveryText(p)}</li>`,
  )}</ul>`;
}

/** Said where a view cut something: the whole is one link away. */
function fullRecord(href: string, what: string): Html {
  return html`<p class="clipped-note">Long ${what} are cut here: <a href="${href}">the full record</a> has all of it.</p>`;
}

function page(opts: { title: string; assets: AssetUrls; body: Html; bodyClass?: string }): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${opts.title}</title>
<link rel="icon" href="${opts.assets.icon}" type="image/svg+xml">
<link rel="stylesheet" href="${opts.assets.css}">
<script type="module" src="${opts.assets.js}"></script>
</head>
<body class="${opts.bodyClass ?? ''}">
${opts.body}
</body>
</html>
`;
}

function linkList(links: readonly Link[]): Html {
  if (links.length === 0) return html`<p class="muted">No links.</p>`;
  return html`<ul class="links">${links.map(
    (l) => html`<li><a href="${l.href}" rel="noopener noreferrer" target="_blank">${l.label}</a></li>`,
  )}</ul>`;
}

function dl(entries: readonly [string, Html | string | undefined][]): Html {
  return html`<dl>${entries
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => html`<div><dt>${k}</dt><dd>${v}</dd></div>`)}</dl>`;
}

function keyValues(title: string, values: Record<string, string>): Html {
  const entries = Object.entries(values);
  if (entries.length === 0) return html``;
  return html`<details><summary>${title} (${entries.length})</summary>${dl(entries.map(([k, v]) => [k, v]))}</details>`;
}

/** A URL that is not http(s) stays visible as text, so nothing is hidden, but is never a link. */
function unsafeUrls(a: TimelineAlert): Html {
  const e = a.episode;
  const candidates: [string, string][] = [['generatorURL', e.generatorURL]];
  for (const [k, v] of Object.entries(e.annotations))
    if (/url|runbook|link|dashboard/i.test(k)) candidates.push([k, v]);
  const shown = candidates.filter(([, v]) => v && !safeHref(v));
  if (shown.length === 0) return html``;
  return html`<p class="muted">Not links (not http or https): ${shown.map(
    ([k, v], i) => html`${i > 0 ? ', ' : ''}${k} <code>${clip(v, 120)}</code>`,
  )}</p>`;
}

function alertDetail(a: TimelineAlert, t: Timeline): Html {
  const e = a.episode;
  const d = e.decision;
  const deploy = a.deployKey === undefined ? undefined : t.deploys.find((x) => x.key === a.deployKey);
  const id = `alert-${a.key}`;
  const verdicts: Html[] = [];
  if (a.feedbackText) verdicts.push(html`<p class="verdict" data-verdict="feedback">${a.feedbackText}</p>`);
  if (deploy?.verdict) {
    verdicts.push(
      html`<p class="verdict" data-verdict="${deploy.verdict.status}">Deploy verdict: <strong>${deploy.verdict.status}</strong>${deploy.verdict.detail ? html` (${deploy.verdict.detail})` : ''}</p>`,
    );
  }
  return html`<article class="detail paged-${a.paged}" id="${id}" aria-labelledby="${id}-title" tabindex="-1" data-alert="${a.key}">
<header><h3 id="${id}-title"><span class="glyph" aria-hidden="true">${PAGED_GLYPH[a.paged]}</span> ${a.alertname}</h3>
<a class="close" href="#timeline" aria-label="Close these details">Close</a></header>
<p class="who"><span class="badge paged-${a.paged}">${PAGED_LABEL[a.paged]}</span> ${a.pagedText}</p>
<p class="reason">${d.sentence}</p>
${verdicts}
${d.evidence ? evidenceSection(d.evidence) : ''}
<h4>Delivery</h4>
${deliveryList(a.delivery)}
${dl([
  ['Service', `${a.service ?? 'none (no service label)'} · ${d.environment}`],
  ['Started', time(e.startsAtMs)],
  ['Ended', a.endMs === undefined ? 'still firing' : time(a.endMs)],
  [
    'Deploy',
    deploy ? html`<a href="#deploy-${deploy.key}">${deployLabel(deploy)}</a> at ${time(deploy.deploy.at)}` : undefined,
  ],
  ['Reason code', html`<code>${d.reason}</code> (policy <code>${d.policy}</code>)`],
  ['Fingerprint', html`<code>${e.fingerprint}</code>`],
])}
<h4>Links</h4>
${linkList(a.links)}
${unsafeUrls(a)}
${keyValues('Labels', e.labels)}
${keyValues('Annotations', e.annotations)}
${a.clipped ? fullRecord(a.href, 'labels, annotations and texts') : ''}
</article>`;
}

const EFFECT_TEXT: Record<DecisionEvidence['effect'], string> = {
  convicted: 'the metrics agree: the author was paged',
  exonerated: 'the metrics cleared the deploy: on-call was paged instead',
  stands: 'the decision stands',
  advisory: 'advisory: routing unchanged',
};

/** The decision's evidence: verdict, sentence, and each comparison's two series side by side, the deploy marked. */
function evidenceSection(ev: DecisionEvidence): Html {
  const effect = `${EFFECT_TEXT[ev.effect]}${ev.late ? '; judged after the page went out' : ''}`;
  return html`<h4>Evidence</h4>
<p class="verdict" data-verdict="evidence-${ev.verdict}">Evidence: <strong>${ev.verdict}</strong> (${effect})</p>
<p class="evidence-sentence">${ev.sentence}</p>
${(ev.series ?? []).map((s) => evidenceChart(s, ev.from))}`;
}

const CHART_W = 320;
const CHART_H = 90;
const CHART_PAD = 4;
const NEW_STROKE = '#c0392b';
const OLD_STROKE = '#2c7bb6';

/** One comparison as a small SVG: the new side and the old side as lines, a dashed line where the deploy was. */
function evidenceChart(s: EvidenceSeries, deployAt: number): Html {
  const points = [...s.new, ...s.old];
  if (points.length === 0) return html``;
  const times = [...points.map(([t]) => t), deployAt];
  const values = points.map(([, v]) => v);
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const v0 = Math.min(0, ...values);
  const v1 = Math.max(...values);
  const x = (t: number) => CHART_PAD + ((t - t0) / (t1 - t0 || 1)) * (CHART_W - 2 * CHART_PAD);
  const y = (v: number) => CHART_H - CHART_PAD - ((v - v0) / (v1 - v0 || 1)) * (CHART_H - 2 * CHART_PAD);
  const line = (side: readonly (readonly [number, number])[]) =>
    side.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const dx = x(deployAt).toFixed(1);
  const hhmm = (ms: number) => `${new Date(ms).toISOString().slice(11, 16)} UTC`;
  const title = `${s.name}: ${s.newLabel} (red) against ${s.oldLabel} (blue), from ${hhmm(t0)} to ${hhmm(t1)}; the dashed line is the deploy at ${hhmm(deployAt)}; at most ${formatValue(v1, s.unit)}.`;
  return html`<figure class="evidence-chart">
<svg width="${CHART_W}" height="${CHART_H}" viewBox="0 0 ${CHART_W} ${CHART_H}" role="img" aria-label="${title}">
<title>${title}</title>
<rect x="0" y="0" width="${CHART_W}" height="${CHART_H}" fill="none" stroke="#ccc"/>
<line x1="${dx}" y1="0" x2="${dx}" y2="${CHART_H}" stroke="#555" stroke-dasharray="4 3"/>
<polyline class="evidence-old" fill="none" stroke="${OLD_STROKE}" stroke-width="1.5" points="${line(s.old)}"/>
<polyline class="evidence-new" fill="none" stroke="${NEW_STROKE}" stroke-width="1.5" points="${line(s.new)}"/>
</svg>
<figcaption>${s.name}: <span class="evidence-new-label">${s.newLabel}</span> vs <span class="evidence-old-label">${s.oldLabel}</span> (max ${formatValue(v1, s.unit)})</figcaption>
</figure>`;
}

function deployDetail(d: TimelineDeploy, t: Timeline): Html {
  const dep = d.deploy;
  const id = `deploy-${d.key}`;
  const alerts = d.alerts.map((k) => t.alerts.find((a) => a.key === k)).filter((a) => a !== undefined);
  const what = d.kind === 'deploy' ? `Deploy ${dep.version}` : `${d.what.charAt(0).toUpperCase()}${d.what.slice(1)}`;
  return html`<article class="detail detail-deploy" id="${id}" aria-labelledby="${id}-title" tabindex="-1" data-deploy="${d.key}">
<header><h3 id="${id}-title"><span class="glyph" aria-hidden="true">${d.kind === 'flag' ? '⚑' : '◆'}</span> ${what}</h3>
<a class="close" href="#timeline" aria-label="Close these details">Close</a></header>
${d.verdict ? html`<p class="verdict" data-verdict="${d.verdict.status}">Verdict: <strong>${d.verdict.status}</strong>${d.verdict.detail ? html` (${d.verdict.detail})` : ''}</p>` : ''}
${dl([
  ['Service', `${dep.service} · ${dep.environment}`],
  ['At', time(dep.at)],
  ['Stage', `${dep.stage}${dep.percent === undefined ? '' : ` (${dep.percent}%)`}`],
  ['Version', dep.version],
  ['Previous version', dep.previousVersion],
  ['Hosts', hostsText(d)],
  ['Id', html`<code>${dep.id}</code>`],
  ['Rollback of', d.undid === undefined ? undefined : undidList(d, t)],
  ['Rolled back by', rolledBackByLink(d, t)],
])}
<h4>Changes${d.changeCount > dep.changes.length ? ` (the first ${dep.changes.length} of ${d.changeCount})` : ''}</h4>
<ul class="changes">${dep.changes.map(
    (c) =>
      html`<li>${c.pullRequest?.title ?? c.commit?.message ?? '(no title)'}: by ${personName(c.author)}${c.author.email && c.author.name ? html` &lt;${c.author.email}&gt;` : ''}${c.mergedBy ? `, merged by ${personName(c.mergedBy)}` : ''}</li>`,
  )}</ul>
<h4>Links</h4>
${linkList(d.links)}
<h4>Alerts attributed to it</h4>
${
  alerts.length === 0
    ? html`<p class="muted">None in this range.</p>`
    : html`<ul>${alerts.map((a) => html`<li><a href="#alert-${a.key}">${a.alertname}</a>, ${PAGED_LABEL[a.paged]}, started ${time(a.episode.startsAtMs)}</li>`)}</ul>`
}
${d.clipped ? fullRecord(d.href, 'lists and texts') : ''}
</article>`;
}

/** The deploys a rollback undid: those in view as links, the others counted. */
function undidList(d: TimelineDeploy, t: Timeline): Html | string {
  const shown = (d.undid ?? []).map((k) => t.deploys.find((x) => x.key === k)).filter((x) => x !== undefined);
  const total = d.deploy.rollback?.of.length ?? 0;
  const rest = total - shown.length;
  if (total === 0) return 'nothing changepager knows of';
  return html`${shown.map((u, i) => html`${i > 0 ? ', ' : ''}<a href="#deploy-${u.key}">${deployLabel(u)}</a>`)}${rest > 0 ? `${shown.length > 0 ? ' and ' : ''}${rest} deploy${rest === 1 ? '' : 's'} outside this range` : ''}`;
}

function rolledBackByLink(d: TimelineDeploy, t: Timeline): Html | undefined {
  const by = d.rolledBackBy === undefined ? undefined : t.deploys.find((x) => x.key === d.rolledBackBy);
  return by ? html`<a href="#deploy-${by.key}">${deployLabel(by)}</a> at ${time(by.deploy.at)}` : undefined;
}

function hostsText(d: TimelineDeploy): string {
  const { hosts } = d.deploy;
  if (d.hostCount === 0) return 'all';
  return `${hosts.join(', ')}${d.hostCount > hosts.length ? ` and ${d.hostCount - hosts.length} more` : ''}`;
}

/** Pattern fills: the second channel besides colour (solid, stripes, dots, dashed outline). */
const DEFS = trusted(`<svg class="defs" width="0" height="0" aria-hidden="true" focusable="false">
<defs>
<pattern id="pattern-oncall" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
<rect width="8" height="8" fill="#0072b2"/><rect width="3" height="8" fill="#ffffff"/></pattern>
<pattern id="pattern-ambiguous" width="6" height="6" patternUnits="userSpaceOnUse">
<rect width="6" height="6" fill="#e69f00"/><circle cx="3" cy="3" r="1.4" fill="#1a1a1a"/></pattern>
<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
<path d="M0,0 L10,5 L0,10 z" fill="#1f2933"/></marker>
<filter id="knockout-even" x="-0.01" y="-0.05" width="1.02" height="1.1">
<feFlood flood-color="#f6f8fa"/><feComposite in="SourceGraphic" operator="over"/></filter>
<filter id="knockout-odd" x="-0.01" y="-0.05" width="1.02" height="1.1">
<feFlood flood-color="#ffffff"/><feComposite in="SourceGraphic" operator="over"/></filter>
</defs>
</svg>`);

/** Fill of an alert bar: a colour, or a pattern of it (in DEFS). */
const BAR_FILL: Record<Paged, string> = {
  author: '#d55e00',
  oncall: 'url(#pattern-oncall)',
  ambiguous: 'url(#pattern-ambiguous)',
  shadow: '#ffffff',
  nobody: '#ffffff',
};

function swatch(paged: Paged): Html {
  return html`<svg class="swatch" width="30" height="12" viewBox="0 0 30 12" aria-hidden="true" focusable="false"><rect class="bar paged-${paged}" fill="${BAR_FILL[paged]}" x="1" y="1" width="28" height="10"/></svg>`;
}

function legend(): Html {
  const items: [Paged, string][] = [
    ['author', 'author paged: solid'],
    ['oncall', 'on-call paged: stripes'],
    ['ambiguous', 'ambiguous change, on-call paged: dots'],
    ['shadow', 'shadow mode, on-call paged: dashed outline'],
    ['nobody', 'already resolved when first seen, nobody paged: dotted outline'],
  ];
  return html`<ul class="legend" aria-label="Legend">
${items.map(([p, text]) => html`<li>${swatch(p)} <span class="glyph" aria-hidden="true">${PAGED_GLYPH[p]}</span> ${text}</li>`)}
<li><svg class="swatch" width="16" height="14" viewBox="0 0 16 14" aria-hidden="true" focusable="false"><path class="marker marker-full" d="M8,1 L14,7 L8,13 L2,7 z"/></svg> deploy (hollow: canary or partial)</li>
<li><svg class="swatch" width="16" height="14" viewBox="0 0 16 14" aria-hidden="true" focusable="false"><path class="marker marker-flag" d="M3,1 L3,13 M3,1 L13,4 L3,7"/></svg> flag change</li>
<li><svg class="swatch" width="30" height="12" viewBox="0 0 30 12" aria-hidden="true" focusable="false"><line class="cause" x1="1" y1="6" x2="27" y2="6" marker-end="url(#arrow)"/></svg> alert attributed to a deploy</li>
<li><svg class="swatch" width="30" height="12" viewBox="0 0 30 12" aria-hidden="true" focusable="false"><path class="undo" d="M27,10 Q14,0 3,10"/></svg> rollback and the deploy it undid</li>
</ul>`;
}

function markerShape(d: TimelineDeploy, x: number, y: number): Html {
  const fill = d.deploy.stage === 'full' ? 'marker-full' : 'marker-partial';
  if (d.kind === 'flag') {
    return html`<path class="marker marker-flag" d="M${x},${y - 8} L${x},${y + 8} M${x},${y - 8} L${x + 11},${y - 4} L${x},${y}"/>`;
  }
  if (d.kind !== 'deploy') {
    return html`<rect class="marker ${fill}" x="${x - 6}" y="${y - 6}" width="12" height="12"/>`;
  }
  return html`<path class="marker ${fill}" d="M${x},${y - 8} L${x + 8},${y} L${x},${y + 8} L${x - 8},${y} z"/>`;
}

/**
 * A label on the chart. The knockout filter paints the lane's own ground under the text's box first, so the
 * lines that run behind a label (an attribution, a deploy's guide, "now") never run through its letters.
 */
function labelText(className: string, label: Label, knockout: string): Html {
  return html`<text class="${className}" x="${label.x}" y="${label.y}" text-anchor="${label.anchor}" filter="url(#${knockout})">${label.text}</text>`;
}

/** The four keys of a lane, in two short lines under its counts, each spelled out in its tooltip. */
function keysSvg(lane: Lane, top: number): Html | string {
  const k = lane.keys;
  if (!k || k.deploys === 0) return '';
  const seconds = (s: number | null) => (s === null ? '–' : humanGap(s * 1000));
  const rate = k.changeFailureRate === null ? '–' : `${Math.round(k.changeFailureRate * 100)}%`;
  const perDay = k.deploymentsPerDay === null ? '–' : `${k.deploymentsPerDay}`;
  const full = `Deployment frequency ${perDay} per day; lead time for changes ${seconds(k.leadTimeSeconds)}; change failure rate ${rate}; time to restore ${seconds(k.timeToRestoreSeconds)} (over this range, from what it shows)`;
  return html`<text class="lane-meta lane-keys" x="12" y="${top + 54}">${perDay}/day · lead ${seconds(k.leadTimeSeconds)}<title>${full}</title></text>
<text class="lane-meta lane-keys" x="12" y="${top + 68}">fail ${rate} · restore ${seconds(k.timeToRestoreSeconds)}<title>${full}</title></text>`;
}

function laneSvg(p: PlacedLane, i: number, t: Timeline, layout: ChartLayout): Html {
  const { lane } = p;
  const knockout = i % 2 === 0 ? 'knockout-even' : 'knockout-odd';
  const counts = `${lane.deploys.filter((d) => d.inRange).length} deploy${lane.deploys.length === 1 ? '' : 's'} · ${lane.alerts.length} alert${lane.alerts.length === 1 ? '' : 's'}`;
  const name = html`<text class="lane-name" x="12" y="${p.top + 20}">${p.name}<title>${lane.name}</title></text>
<text class="lane-meta" x="12" y="${p.top + 38}">${counts}</text>${keysSvg(lane, p.top)}`;
  const href = lane.service === undefined ? undefined : pageHref({ ...t.range, service: lane.service });
  const bottom = p.top + p.height;
  return html`<g class="lane" data-service="${lane.service ?? ''}" role="group" aria-label="${lane.name}: ${counts}">
<rect class="lane-bg ${i % 2 === 0 ? 'even' : 'odd'}" x="0" y="${p.top}" width="${layout.width}" height="${p.height}"/>
${href ? html`<a href="${href}" aria-label="Only ${lane.name}">${name}</a>` : name}
${p.deploys.map((d) => html`<line class="deploy-guide" x1="${d.x}" y1="${d.y + 9}" x2="${d.x}" y2="${bottom - 2}"/>`)}
${p.undos.map(
  (u) =>
    html`<path class="undo" data-rollback="${u.rollback.key}" data-deploy="${u.undone.key}" d="M${u.x1},${u.y - 2} Q${(u.x1 + u.x2) / 2},${u.y - 14} ${u.x2},${u.y - 2}" marker-end="url(#arrow)"><title>${deployLabel(u.rollback)} at ${iso(u.rollback.deploy.at)} undid ${deployLabel(u.undone)}</title></path>`,
)}
${p.lines.map(
  (l) =>
    html`<line class="cause${l.offscreen ? ' offscreen' : ''}" data-alert="${l.alert.key}" data-deploy="${l.deploy.key}" x1="${l.x1}" y1="${l.y1}" x2="${l.x2}" y2="${l.y2}" marker-end="url(#arrow)"><title>${l.alert.alertname} attributed to ${deployLabel(l.deploy)}${l.offscreen ? ' (outside this range)' : ''}</title></line>`,
)}
${p.deploys.map((d) => {
  const label = deployLabel(d.d);
  return html`<a class="deploy kind-${d.d.kind === 'flag' ? 'flag' : d.d.kind === 'deploy' ? 'deploy' : 'other'}${d.d.deploy.rollback ? ' rollback' : ''}${d.d.rolledBackBy ? ' rolled-back' : ''}" href="#deploy-${d.d.key}" data-deploy="${d.d.key}" data-kind="${d.d.kind}" data-stage="${d.d.deploy.stage}" aria-label="${d.d.kind === 'flag' ? 'Flag change' : 'Deploy'} ${label}, ${iso(d.d.deploy.at)}">
<title>${d.d.kind}: ${label} at ${iso(d.d.deploy.at)}</title>
${markerShape(d.d, d.x, d.y)}
${d.label ? labelText('deploy-label', d.label, knockout) : ''}
</a>`;
})}
${p.alerts.map((b) => {
  const a = b.a;
  const span = `${iso(a.episode.startsAtMs)} to ${a.endMs === undefined ? 'now (still firing)' : iso(a.endMs)}`;
  const width = Math.max(4, b.x2 - b.x1);
  return html`<a class="alert paged-${a.paged}" href="#alert-${a.key}" data-alert="${a.key}" data-paged="${a.paged}" aria-label="${a.alertname}, ${PAGED_LABEL[a.paged]}: ${a.pagedText}; ${span}">
<title>${a.alertname}: ${a.episode.decision.sentence}${a.feedbackText ? ` (${a.feedbackText})` : ''}</title>
${labelText('alert-label', b.label, knockout)}
<rect class="bar paged-${a.paged}" fill="${BAR_FILL[a.paged]}" x="${b.x1}" y="${b.y}" width="${width}" height="10"/>
${b.firing ? html`<path class="firing" d="M${b.x1 + width},${b.y - 2} l6,7 l-6,7 z"/>` : ''}
${b.clippedLeft ? html`<path class="clipped" d="M${b.x1},${b.y - 2} l-6,7 l6,7 z"/>` : ''}
</a>`;
})}
</g>`;
}

function chart(t: Timeline): Html {
  const layout = layoutChart(t);
  if (t.lanes.length === 0) {
    return html`<p class="empty">No deploys and no alerts in this range${t.range.service ? html` for <strong>${t.range.service}</strong>` : ''}.</p>`;
  }
  const bottom = layout.height - 22;
  return html`<div class="chart-scroll">
<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${layout.width} ${layout.height}" width="${layout.width}" height="${layout.height}" role="group" aria-labelledby="chart-title">
<title id="chart-title">Deploys and alerts per service, ${iso(t.range.from)} to ${iso(t.range.to)}. Each alert links to its details; the table below lists the same.</title>
<g class="axis" aria-hidden="true">
${layout.ticks.map(
  (k) => html`<line class="grid" x1="${k.x}" y1="${AXIS_HEIGHT - 6}" x2="${k.x}" y2="${bottom}"/>
<text class="tick" x="${k.x}" y="18" data-time="${iso(k.at)}" data-step="${layout.stepMs}">${k.label}</text>`,
)}
<line class="plot-edge" x1="${GUTTER}" y1="${AXIS_HEIGHT - 6}" x2="${GUTTER}" y2="${bottom}"/>
</g>
${layout.lanes.map((p, i) => laneSvg(p, i, t, layout))}
${
  layout.nowX === undefined
    ? ''
    : html`<g class="now" aria-hidden="true"><line x1="${layout.nowX}" y1="${AXIS_HEIGHT - 6}" x2="${layout.nowX}" y2="${bottom + 4}"/><text x="${layout.nowX}" y="${bottom + 16}" text-anchor="middle">now</text></g>`
}
</svg>
</div>`;
}

function tables(t: Timeline): Html {
  const alerts = [...t.alerts].reverse();
  const deploys = t.deploys.filter((d) => d.inRange).reverse();
  return html`<section class="tables" aria-labelledby="tables-title">
<h2 id="tables-title">The same as a table</h2>
<div class="table-scroll"><table class="alerts-table">
<caption>Alerts (${alerts.length}), latest first</caption>
<thead><tr><th scope="col">Started</th><th scope="col">Alert</th><th scope="col">Service</th><th scope="col">Who was paged</th><th scope="col">Delivery</th><th scope="col">Why</th><th scope="col">Deploy</th></tr></thead>
<tbody>${alerts.map((a) => {
    const deploy = a.deployKey === undefined ? undefined : t.deploys.find((d) => d.key === a.deployKey);
    return html`<tr data-alert="${a.key}">
<td data-label="Started">${time(a.episode.startsAtMs)}${a.endMs === undefined ? html` <span class="firing-text">(firing)</span>` : html` to ${time(a.endMs, 'time')}`}</td>
<td data-label="Alert"><a href="#alert-${a.key}">${a.alertname}</a></td>
<td data-label="Service">${a.service ?? '(none)'}</td>
<td data-label="Who was paged"><span class="badge paged-${a.paged}"><span aria-hidden="true">${PAGED_GLYPH[a.paged]} </span>${PAGED_LABEL[a.paged]}</span> ${a.pagedText}</td>
<td data-label="Delivery">${deliveryCell(a.delivery)}</td>
<td data-label="Why">${a.episode.decision.sentence}</td>
<td data-label="Deploy">${deploy ? html`<a href="#deploy-${deploy.key}">${deploy.deploy.version}</a>` : '—'}</td>
</tr>`;
  })}</tbody>
</table></div>
<div class="table-scroll"><table class="deploys-table">
<caption>Deploys and flag changes (${deploys.length}), latest first</caption>
<thead><tr><th scope="col">At</th><th scope="col">Service</th><th scope="col">What</th><th scope="col">By</th><th scope="col">Stage</th><th scope="col">Alerts attributed</th></tr></thead>
<tbody>${deploys.map(
    (d) => html`<tr data-deploy="${d.key}">
<td data-label="At">${time(d.deploy.at)}</td>
<td data-label="Service">${d.deploy.service} · ${d.deploy.environment}</td>
<td data-label="What"><a href="#deploy-${d.key}">${d.kind === 'deploy' ? d.deploy.version : d.what}</a>${d.deploy.rollback ? ' (rollback)' : d.rolledBackBy ? ' (rolled back)' : ''}</td>
<td data-label="By">${authorsText(d)}</td>
<td data-label="Stage">${d.deploy.stage}${d.deploy.percent === undefined ? '' : ` (${d.deploy.percent}%)`}</td>
<td data-label="Alerts attributed">${d.alerts.length}${d.verdict ? ` · ${d.verdict.status}` : ''}</td>
</tr>`,
  )}</tbody>
</table></div>
</section>`;
}

/** The part of the page the script replaces on refresh: chart, details and tables. */
export function timelineSection(t: Timeline): Html {
  const shownDeploys = t.deploys.filter((d) => d.inRange).length;
  const truncated = t.truncated.alerts || t.truncated.deploys;
  const lookback = t.range.lookbackMs;
  return html`<section id="timeline" aria-labelledby="timeline-title" data-revision="${t.revision}">
<h2 id="timeline-title">${t.range.service ?? 'All services'}: ${time(t.range.from)} to ${t.range.live ? 'now' : time(t.range.to)}</h2>
<p class="summary">${shownDeploys} deploy${shownDeploys === 1 ? '' : 's'} or flag change${shownDeploys === 1 ? '' : 's'} and ${t.alerts.length} alert${t.alerts.length === 1 ? '' : 's'}${lookback === undefined ? '' : ` in the last ${spanText(lookback)}, shown from just before the first of them`}.${
    truncated
      ? html` <strong class="warning">Only the latest ${t.truncated.alerts ? `${t.alerts.length} alerts` : `${shownDeploys} deploys`} are shown: pick a shorter range.</strong>`
      : ''
  }</p>
${chart(t)}
<div class="details">
${t.alerts.map((a) => alertDetail(a, t))}
${t.deploys.map((d) => deployDetail(d, t))}
</div>
${tables(t)}
${precisionTable(t)}
</section>`;
}

/**
 * How the decisions of the alerts shown fared, per service: the numbers of GET /v1/precision, counted over this
 * view's alerts (those firing at some moment of the range) rather than those that started in a period.
 */
function precisionTable(t: Timeline): Html {
  const tally = new PrecisionTally();
  tally.add(
    t.alerts.map(({ episode: e }) => {
      const d = e.decision;
      return {
        startsAtMs: e.startsAtMs,
        notMine: d.feedback?.kind === 'not_my_change',
        pagedPerson: d.targets.some((x) => x.kind === 'person'),
        ...(d.service === undefined ? {} : { service: d.service }),
        ...(d.deployId === undefined ? {} : { deployId: d.deployId }),
        ...(d.evidence ? { evidence: { verdict: d.evidence.verdict, effect: d.evidence.effect } } : {}),
      };
    }),
  );
  const rows = tally.services();
  if (rows.length === 0) return html``;
  const share = (p: number | null) => (p === null ? '—' : `${Math.round(p * 100)} %`);
  return html`<div class="table-scroll"><table class="precision-table">
<caption>Precision of the alerts shown that named a change: pages to a person, and what people and the metrics said</caption>
<thead><tr><th scope="col">Service</th><th scope="col">Paged a person</th><th scope="col">Not my change</th><th scope="col">Precision</th><th scope="col">Evidence judged</th><th scope="col">Confirmed</th><th scope="col">Cleared (on-call paged)</th><th scope="col">Evidence and person disagree</th></tr></thead>
<tbody>${rows.map(
    (r) => html`<tr data-precision="${r.service}">
<td data-label="Service">${r.service || '(none)'}</td>
<td data-label="Paged a person">${r.pagedPerson}</td>
<td data-label="Not my change">${r.notMyChange}</td>
<td data-label="Precision">${share(r.precision)}</td>
<td data-label="Evidence judged">${r.evidenceJudged}</td>
<td data-label="Confirmed">${r.confirmed}</td>
<td data-label="Cleared (on-call paged)">${r.exonerated}</td>
<td data-label="Evidence and person disagree">${r.disagreements}</td>
</tr>`,
  )}</tbody>
</table></div>`;
}

/** PT24H, PT90M, PT45S: the shortest exact spelling, for links that keep the span. */
function isoDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `PT${ms / 3_600_000}H`;
  if (ms % 60_000 === 0) return `PT${ms / 60_000}M`;
  return `PT${Math.round(ms / 1000)}S`;
}

function controls(range: TimelineRange, services: readonly string[], now: number, defaultRangeMs: number): Html {
  // The first choice, the empty range, is the view fitted to the data of the default look-back.
  const current = range.lookbackMs !== undefined ? '' : (range.query.range ?? isoDuration(range.spanMs));
  const fit = { value: '', label: `fit to the last ${spanText(defaultRangeMs)}` };
  const presets = [
    fit,
    ...(RANGE_PRESETS.some((p) => p.value === current) || current === ''
      ? RANGE_PRESETS
      : [...RANGE_PRESETS, { value: current, label: `custom (${current})` }]),
  ];
  const names = [...new Set([...services, ...(range.service ? [range.service] : [])])].sort();
  const span = isoDuration(range.spanMs);
  const earlier = pageHref({ ...range, query: { range: span, to: iso(range.to - range.spanMs) } });
  const later = range.live
    ? undefined
    : range.to + range.spanMs >= now
      ? pageHref({ ...range, query: { range: span } })
      : pageHref({ ...range, query: { range: span, to: iso(range.to + range.spanMs) } });
  const live = pageHref({ ...range, query: { range: span } });
  return html`<form class="controls" method="get" action="/" aria-label="Time range and service">
<label>Service
<select name="service">
<option value=""${range.service === undefined ? trusted(' selected') : ''}>All services</option>
${names.map((s) => html`<option value="${s}"${s === range.service ? trusted(' selected') : ''}>${s}</option>`)}
</select></label>
<label>Range
<select name="range">
${presets.map((p) => html`<option value="${p.value}"${p.value === current ? trusted(' selected') : ''}>${p.label}</option>`)}
</select></label>
<label>Ending at <span class="tz-hint">(UTC, 24-hour; empty: now)</span>
<input type="text" name="end" inputmode="numeric" autocomplete="off" placeholder="YYYY-MM-DD hh:mm" pattern="\\d{4}-\\d{2}-\\d{2}[T ]\\d{2}:\\d{2}(:\\d{2})?" size="16" value="${range.live ? '' : iso(range.to).slice(0, 16).replace('T', ' ')}"></label>
${range.environment ? html`<input type="hidden" name="env" value="${range.environment}">` : ''}
<button type="submit">Show</button>
</form>
<nav class="shift" aria-label="Move the time range">
<a href="${earlier}" rel="prev">◀ Earlier</a>
${later ? html`<a href="${later}" rel="next">Later ▶</a>` : ''}
${range.live ? html`<span class="live-badge">● Live</span>` : html`<a href="${live}">Now (live)</a>`}
</nav>`;
}

export function timelinePage(ctx: PageContext): Html {
  const { timeline: t, caller } = ctx;
  const title = `${t.range.service ?? 'All services'} · changepager timeline`;
  const body = html`${DEFS}
<a class="skip" href="#timeline">Skip to the timeline</a>
<header class="top">
<p class="brand"><a href="/">changepager</a> <span>what changed, and who was paged</span></p>
${
  caller.via === 'open'
    ? ''
    : html`<div class="who">Token: ${caller.name}${caller.role === 'read' ? ' (read-only)' : ''}${
        caller.via === 'session'
          ? html` <form method="post" action="/logout"><button type="submit">Sign out</button></form>`
          : ''
      }</div>`
}
</header>
<main id="main" data-refresh-url="${ctx.refreshUrl}" data-refresh-seconds="${ctx.refreshSeconds}" data-live="${t.range.live ? 'true' : 'false'}">
<h1>Deploys and alerts${t.range.service ? html`: ${t.range.service}` : ''}</h1>
${controls(t.range, ctx.services, t.now, ctx.defaultRangeMs)}
<p class="tz">Times are in UTC, on a 24-hour clock. <span class="refresh-status" role="status" aria-live="polite" data-refresh-status>${t.range.live ? 'This view follows now.' : ''}</span></p>
${legend()}
${timelineSection(t)}
</main>`;
  return page({ title, assets: ctx.assets, body });
}

export function loginPage(opts: { assets: AssetUrls; next: string; error?: string; notice?: string }): Html {
  const body = html`<main id="main" class="login">
<h1>changepager</h1>
<p>The timeline shows people's names and emails: sign in with an API token. A read-only token (<code>role: read</code>) is enough.</p>
${opts.error ? html`<p class="error" role="alert">${opts.error}</p>` : ''}
${opts.notice ? html`<p class="notice" role="status">${opts.notice}</p>` : ''}
<form method="post" action="/login">
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="${opts.next}">
<button type="submit">Sign in</button>
</form>
<p class="muted">Scripts and dashboards can send <code>Authorization: Bearer &lt;token&gt;</code> instead.</p>
</main>`;
  return page({ title: 'Sign in · changepager', assets: opts.assets, body, bodyClass: 'login-page' });
}

export function problemPage(opts: {
  assets: AssetUrls;
  heading: string;
  problems: readonly ProblemDetail[];
  home: string;
}): Html {
  const body = html`<main id="main" class="problem">
<h1>${opts.heading}</h1>
<ul>${opts.problems.map((p) => html`<li><code>${p.path || 'query'}</code>: ${p.message}</li>`)}</ul>
<p><a href="${opts.home}">Show the latest deploys and alerts</a></p>
</main>`;
  return page({ title: `${opts.heading} · changepager`, assets: opts.assets, body });
}
