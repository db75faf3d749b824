import { describe, expect, it } from 'vitest';
import type { Decision, Deploy } from '../../src/core/types.js';
import type { EpisodeRecord } from '../../src/store/store.js';
import { clip, html, safeHref } from '../../src/ui/html.js';
import { CHART_WIDTH, GUTTER, labelSpan, layoutChart } from '../../src/ui/layout.js';
import { buildTimeline, pagedOf } from '../../src/ui/model.js';
import { fitRange, parseRange, spanText } from '../../src/ui/range.js';

// The pure parts of the timeline: who the page says was paged, and the escaping every label goes through.

const person = { kind: 'person', email: 'alice@example.com' } as const;
const oncall = { kind: 'oncall' } as const;

describe('who was paged, from the stored decision', () => {
  it.each<[string, Pick<Decision, 'reason' | 'targets'>, string]>([
    ['the author alone', { reason: 'author_paged', targets: [person] }, 'author'],
    ['the author and on-call', { reason: 'author_and_oncall_paged', targets: [person, oncall] }, 'author'],
    ['on-call with the author told (notify)', { reason: 'author_notified', targets: [oncall] }, 'oncall'],
    ['on-call outside working hours', { reason: 'author_outside_working_hours', targets: [oncall] }, 'oncall'],
    ['on-call for a bundle of changes', { reason: 'ambiguous_bundle', targets: [oncall] }, 'ambiguous'],
    ['on-call in shadow mode', { reason: 'shadow', targets: [oncall] }, 'shadow'],
    ['on-call without a deploy', { reason: 'no_deploy_in_window', targets: [oncall] }, 'oncall'],
    ['on-call after a correlation bug', { reason: 'correlation_error', targets: [oncall] }, 'oncall'],
    ['nobody, for an alert first seen already resolved', { reason: 'resolved_before_seen', targets: [] }, 'nobody'],
  ])('%s', (_intent, decision, paged) => {
    expect(pagedOf(decision)).toBe(paged);
  });
});

describe('escaping', () => {
  it('escapes every interpolated value, in text and in attributes', () => {
    const evil = `"><img src=x onerror='alert(1)'>&`;
    expect(html`<p title="${evil}">${evil}</p>`.text).toBe(
      '<p title="&quot;&gt;&lt;img src=x onerror=&#39;alert(1)&#39;&gt;&amp;">&quot;&gt;&lt;img src=x onerror=&#39;alert(1)&#39;&gt;&amp;</p>',
    );
  });

  it('nests rendered fragments without escaping them twice, and drops null, undefined and false', () => {
    const inner = html`<b>${'<i>'}</b>`;
    expect(html`<p>${inner}${[inner, '&']}${null}${undefined}${false}</p>`.text).toBe(
      '<p><b>&lt;i&gt;</b><b>&lt;i&gt;</b>&amp;</p>',
    );
  });

  it.each([
    ['https://runbooks.example/x?a=1', 'https://runbooks.example/x?a=1'],
    ['http://prometheus.local/graph', 'http://prometheus.local/graph'],
    ['javascript:alert(1)', undefined],
    [' JaVaScRiPt:alert(1)', undefined],
    ['data:text/html,<script>', undefined],
    ['/relative/path', undefined],
    ['', undefined],
  ])('links %s only when it is http(s)', (url, expected) => {
    expect(safeHref(url)).toBe(expected);
  });

  it('clips long labels by characters, not UTF-16 halves', () => {
    expect(clip('checkout', 20)).toBe('checkout');
    expect(clip('😀😀😀😀', 3)).toBe('😀😀…');
  });
});

describe('fitting a view without a range to its data', () => {
  const now = Date.parse('2026-11-26T12:00:00Z');
  const at = (hhmm: string) => Date.parse(`2026-11-26T${hhmm}:00Z`);
  const lookback = () => {
    const parsed = parseRange({}, now, { defaultRangeMs: 6 * 3600_000 });
    if (!parsed.ok) throw new Error('range');
    return parsed.range;
  };

  it.each([
    ['no event: the whole look-back', [], '06:00'],
    ['a burst of the last 15 minutes: the shortest view, an hour', ['11:45', '11:50'], '11:00'],
    ['the oldest event 5 hours ago: a twentieth of the view before it', ['07:00', '11:50'], '06:45'],
    ['an event at the look-back start: never before the look-back', ['06:00'], '06:00'],
    ['an alert firing since before the look-back does not widen it', ['03:00', '11:50'], '11:00'],
    ['the start is a whole minute', ['08:59'], '08:49'],
  ])('%s', (_intent, events, from) => {
    const fitted = fitRange(
      lookback(),
      events.map((e) => at(e)),
    );
    expect(new Date(fitted.from).toISOString().slice(11, 16)).toBe(from);
    expect(fitted.to).toBe(now);
    expect(fitted.spanMs).toBe(now - fitted.from);
  });

  it('leaves a range that was asked for as it is', () => {
    const parsed = parseRange({ range: 'PT24H' }, now, { defaultRangeMs: 6 * 3600_000 });
    if (!parsed.ok) throw new Error('range');
    expect(fitRange(parsed.range, [at('11:50')])).toBe(parsed.range);
  });

  it.each([
    [6 * 3600_000, '6 hours'],
    [3600_000, '1 hour'],
    [90 * 60_000, '90 minutes'],
    [3 * 86_400_000, '3 days'],
  ])('names a span of %i ms "%s"', (ms, text) => {
    expect(spanText(ms)).toBe(text);
  });
});

describe('chart layout', () => {
  const now = Date.parse('2026-11-26T12:00:00Z');
  const deploy = (i: number, at: number): Deploy => ({
    id: `d${i}`,
    service: 'checkout',
    environment: 'production',
    version: `2026.11.26-${String(i).padStart(7, '0')}`,
    stage: 'full',
    hosts: [],
    at,
    receivedAt: at,
    changes: [{ author: { email: 'alice@example.com', name: 'Alice' } }],
  });
  const episode = (i: number, start: number, end?: number): EpisodeRecord => ({
    id: i,
    fingerprint: `f${i}`,
    startsAt: new Date(start).toISOString(),
    startsAtMs: start,
    ...(end === undefined ? {} : { endsAtMs: end }),
    status: end === undefined ? 'firing' : 'resolved',
    labels: { alertname: `Alert${i}` },
    annotations: {},
    generatorURL: '',
    groupKey: 'g',
    receiver: 'r',
    externalURL: '',
    firstSeenAt: start,
    lastSeenAt: start,
    decision: {
      reason: 'no_deploy_in_window',
      sentence: 's',
      service: 'checkout',
      environment: 'production',
      policy: 'author',
      suspects: [],
      targets: [{ kind: 'oncall' }],
      responders: [],
      notify: [],
      wouldPage: [],
      decidedAt: start,
    },
  });

  it('never draws two labels over each other, however crowded the hour, and keeps them on the chart', () => {
    const parsed = parseRange({ range: 'PT1H' }, now, { defaultRangeMs: 6 * 3600_000 });
    if (!parsed.ok) throw new Error('range');
    // 40 deploys and 60 alerts in one hour, several ending at the right edge: the worst case for labels.
    const deploys = Array.from({ length: 40 }, (_, i) => deploy(i, now - 3600_000 + i * 90_000));
    const episodes = Array.from({ length: 60 }, (_, i) =>
      episode(i, now - 3600_000 + i * 61_000, i % 3 === 0 ? undefined : now - 3600_000 + i * 61_000 + 300_000),
    );
    const t = buildTimeline({
      range: parsed.range,
      now,
      deploys: deploys.map((d) => ({ deploy: d, changeCount: d.changes.length, hostCount: d.hosts.length })),
      episodes,
      truncated: { deploys: false, alerts: false },
      bounds: { maxChanges: 10, maxTextChars: 200 },
    });
    const layout = layoutChart(t);
    const lane = layout.lanes[0];
    if (!lane) throw new Error('no lane');
    const overlaps = (spans: [number, number][]) =>
      spans.sort((a, b) => a[0] - b[0]).some((s, i) => i > 0 && s[0] < (spans[i - 1] as [number, number])[1]);
    const byLevel = new Map<number, [number, number][]>();
    for (const d of lane.deploys) {
      if (!d.label) continue;
      const [start, end] = labelSpan(d.label);
      expect(start).toBeGreaterThanOrEqual(GUTTER);
      expect(end).toBeLessThanOrEqual(CHART_WIDTH);
      byLevel.set(d.label.y, [...(byLevel.get(d.label.y) ?? []), [start, end]]);
    }
    for (const spans of byLevel.values()) expect(overlaps(spans)).toBe(false);
    const byRow = new Map<number, [number, number][]>();
    for (const a of lane.alerts) {
      const [start, end] = labelSpan(a.label);
      const span: [number, number] = [Math.min(a.x1, start), Math.max(a.x2, end)];
      expect(span[0]).toBeGreaterThanOrEqual(GUTTER);
      expect(span[1]).toBeLessThanOrEqual(CHART_WIDTH);
      byRow.set(a.y, [...(byRow.get(a.y) ?? []), span]);
    }
    for (const spans of byRow.values()) expect(overlaps(spans)).toBe(false);
    expect(lane.alerts).toHaveLength(60);
    expect(lane.deploys.filter((d) => d.label).length).toBeGreaterThanOrEqual(8);
  });
});
