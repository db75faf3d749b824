import { describe, expect, it } from 'vitest';
import type { EvidenceVerdict } from '../../src/core/judge.js';
import type { Deploy } from '../../src/core/types.js';
import { type AttributedAlert, judge, type VerdictState } from '../../src/core/verdict.js';

// The canary gate with metrics: the same comparison as before a page judges the rollout, alerts or not.

const T0 = Date.parse('2026-11-26T11:00:00Z');
const MIN = 60_000;
const deploy: Deploy = {
  id: 'd1',
  kind: 'deploy',
  service: 'checkout',
  environment: 'production',
  version: 'v2',
  previousVersion: 'v1',
  stage: 'canary',
  hosts: ['web-1'],
  at: T0,
  receivedAt: T0,
  changes: [{ author: { email: 'alice@example.com' } }],
};
const alert: AttributedAlert = {
  fingerprint: 'a1',
  startsAt: '2026-11-26T11:05:00.000000000Z',
  startsAtMs: T0 + 5 * MIN,
  status: 'firing',
  labels: { alertname: 'HighErrorRate' },
  decision: { deployId: 'd1', reason: 'author_paged', sentence: 'Paging alice.' },
};
const WORSE = { verdict: 'worse' as const, sentence: 'error ratio 8.1 % on web-1 vs 0.3 % on the other hosts' };
const ev = (verdict: EvidenceVerdict) => ({ verdict, sentence: `error ratio (${verdict})` });

describe('the canary gate with evidence', () => {
  it.each<[string, { at: number; alerts?: AttributedAlert[]; evidence?: ReturnType<typeof ev> }, VerdictState, RegExp]>(
    [
      [
        'metrics worse before any alert: failing, with the numbers',
        { at: 10, evidence: WORSE },
        'failing',
        /failing on its metrics.*8\.1 %/,
      ],
      [
        'metrics worse and an alert: failing, both said',
        { at: 10, alerts: [alert], evidence: WORSE },
        'failing',
        /1 alert attributed.*The metrics are worse/,
      ],
      ['window over, metrics the same: healthy', { at: 31, evidence: ev('same') }, 'healthy', /is healthy.*no worse/],
      ['window over, metrics better: healthy', { at: 31, evidence: ev('better') }, 'healthy', /is healthy.*better/],
      [
        'window over, too little data: pending, not healthy',
        { at: 31, evidence: ev('no_data') },
        'pending',
        /Not healthy until the metrics can be judged \(no_data\)/,
      ],
      [
        'window over, Prometheus unavailable: pending',
        { at: 31, evidence: ev('unavailable') },
        'pending',
        /\(unavailable\)/,
      ],
      ['window not over, metrics the same: pending', { at: 10, evidence: ev('same') }, 'pending', /decided in/],
      ['no comparisons configured: healthy on alerts alone, as before', { at: 31 }, 'healthy', /is healthy: no alert/],
      [
        'an alert, metrics the same: failing on the alert',
        { at: 10, alerts: [alert], evidence: ev('same') },
        'failing',
        /1 alert attributed/,
      ],
    ],
  )('%s', (_intent, c, state, said) => {
    const v = judge({
      rollout: [deploy],
      attributed: c.alerts ?? [],
      observeMs: 30 * MIN,
      settleMs: 0,
      skewMs: 2 * MIN,
      now: T0 + c.at * MIN,
      ...(c.evidence ? { evidence: c.evidence } : {}),
    });
    expect(v.state).toBe(state);
    expect(v.sentence).toMatch(said);
  });
});
