import { describe, expect, it } from 'vitest';
import type { EvidenceMode } from '../../src/core/comparisons.js';
import { type EvidenceEffect, evidenceArrived, evidenceEffect } from '../../src/core/evidence-route.js';
import type { Evidence, EvidenceVerdict } from '../../src/core/judge.js';

const NOW = Date.parse('2026-11-26T11:10:00Z');
const decision = {
  reason: 'author_paged' as const,
  sentence: 'checkout deploy v2 by alice@example.com at 11:02, alert started 11:09, 7 min later.',
  targets: [{ kind: 'person' as const, email: 'alice@example.com' }],
  responders: ['bob@example.com'],
  deployId: 'd1',
};
const evidence = (verdict: EvidenceVerdict, sentence: string): Evidence => ({
  verdict,
  sentence,
  metrics: [],
  from: NOW - 8 * 60_000,
  to: NOW,
});

describe('evidenceEffect', () => {
  it.each<[EvidenceMode, EvidenceVerdict, boolean, EvidenceEffect, string]>([
    ['required', 'worse', true, 'convicted', 'worse, in time: the author is paged'],
    ['required', 'same', true, 'exonerated', 'same, in time: the deploy is cleared'],
    ['required', 'better', true, 'exonerated', 'better, in time: the deploy is cleared'],
    ['required', 'no_data', true, 'stands', 'too little data: the decision stands'],
    ['required', 'unavailable', true, 'stands', 'Prometheus unavailable: the decision stands'],
    ['required', 'same', false, 'stands', 'the page went out already: nobody is re-routed'],
    ['advisory', 'same', true, 'advisory', 'advisory: shown, routing unchanged'],
    ['advisory', 'worse', true, 'advisory', 'advisory and worse: shown, routing unchanged'],
  ])('%s %s held=%s → %s (%s)', (mode, verdict, held, effect) => {
    expect(evidenceEffect(mode, verdict, held)).toBe(effect);
  });
});

describe('evidenceArrived', () => {
  const worse = evidence(
    'worse',
    'error ratio 8.1 % on v2 vs 0.3 % on v1 over the 7 minutes since the deploy (Mann-Whitney p < 0.001)',
  );
  const same = evidence(
    'same',
    'error ratio 0.3 % on v2 vs 0.3 % on v1 over the 7 minutes since the deploy (Mann-Whitney p = 0.412)',
  );

  it('worse: the person stays paged, and the sentence carries the numbers', () => {
    const out = evidenceArrived({ decision, evidence: worse, mode: 'required', held: true, now: NOW });
    expect(out.reroute).toBe(false);
    expect(out.decision.reason).toBe('author_paged');
    expect(out.decision.targets).toEqual(decision.targets);
    expect(out.decision.sentence).toContain('error ratio 8.1 % on v2 vs 0.3 % on v1');
    expect(out.evidence).toMatchObject({
      verdict: 'worse',
      effect: 'convicted',
      late: false,
      mode: 'required',
      at: NOW,
    });
  });

  it('same: deploy_exonerated, on-call is the target, no responders, the old reason kept in the sentence', () => {
    const out = evidenceArrived({ decision, evidence: same, mode: 'required', held: true, now: NOW });
    expect(out.reroute).toBe(true);
    expect(out.decision).toMatchObject({ reason: 'deploy_exonerated', targets: [{ kind: 'oncall' }], responders: [] });
    expect(out.decision.sentence).toMatch(/^The metrics clear d1: error ratio 0\.3 % on v2/);
    expect(out.decision.sentence).toContain(decision.sentence);
  });

  it('unavailable: the decision stands and says why', () => {
    const out = evidenceArrived({
      decision,
      evidence: evidence('unavailable', 'evidence unavailable: error ratio: connection refused'),
      mode: 'required',
      held: true,
      now: NOW,
    });
    expect(out.reroute).toBe(false);
    expect(out.decision.reason).toBe('author_paged');
    expect(out.decision.sentence).toContain('Evidence unavailable, so the decision stands');
    expect(out.decision.sentence).toContain('connection refused');
  });

  it('late: shown, marked late, nobody re-routed even when it clears the deploy', () => {
    const out = evidenceArrived({ decision, evidence: same, mode: 'required', held: false, now: NOW });
    expect(out.reroute).toBe(false);
    expect(out.evidence.late).toBe(true);
    expect(out.decision.reason).toBe('author_paged');
    expect(out.decision.sentence).toContain('arrived after the page went out');
  });

  it('advisory: shown, routing unchanged', () => {
    const out = evidenceArrived({ decision, evidence: same, mode: 'advisory', held: true, now: NOW });
    expect(out.reroute).toBe(false);
    expect(out.decision.targets).toEqual(decision.targets);
    expect(out.decision.sentence).toContain('Evidence (advisory, same)');
  });
});
