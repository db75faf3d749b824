import { describe, expect, it } from 'vitest';
import { PrecisionTally } from '../../src/core/precision.js';
import type { DecidedEpisode } from '../../src/core/stats.js';

const T0 = Date.parse('2026-11-26T11:00:00Z');
const ep = (over: Partial<DecidedEpisode>): DecidedEpisode => ({
  service: 'checkout',
  startsAtMs: T0,
  deployId: 'd1',
  notMine: false,
  pagedPerson: true,
  ...over,
});

describe('PrecisionTally', () => {
  it.each<[string, DecidedEpisode[], Record<string, number | null>]>([
    ['a page to a person, nobody disowned it: precision 1', [ep({})], { pagedPerson: 1, notMyChange: 0, precision: 1 }],
    [
      'one of two pages disowned: precision 0.5',
      [ep({}), ep({ notMine: true })],
      { pagedPerson: 2, notMyChange: 1, precision: 0.5 },
    ],
    [
      'evidence confirmed one, cleared another (on-call paged: not a page to a person)',
      [
        ep({ evidence: { verdict: 'worse', effect: 'convicted' } }),
        ep({ pagedPerson: false, evidence: { verdict: 'same', effect: 'exonerated' } }),
      ],
      { pagedPerson: 1, evidenceJudged: 2, confirmed: 1, exonerated: 1, disagreements: 0 },
    ],
    [
      'the metrics said worse and the author said not mine: a disagreement',
      [ep({ notMine: true, evidence: { verdict: 'worse', effect: 'convicted' } })],
      { disagreements: 1, confirmed: 1, notMyChange: 1 },
    ],
    [
      'evidence unavailable: judged, neither confirmed nor cleared',
      [ep({ evidence: { verdict: 'unavailable', effect: 'stands' } })],
      { evidenceJudged: 1, confirmed: 0, exonerated: 0 },
    ],
    [
      'on-call only: counted for nothing but the service',
      [ep({ pagedPerson: false })],
      { pagedPerson: 0, precision: null },
    ],
  ])('%s', (_intent, episodes, expected) => {
    const tally = new PrecisionTally();
    tally.add(episodes);
    expect(tally.services()).toEqual([expect.objectContaining({ service: 'checkout', ...expected })]);
  });

  it('leaves out decisions that named no change, and sorts services by name', () => {
    const tally = new PrecisionTally();
    tally.add([ep({ service: 'search' }), ep({ deployId: undefined }), ep({ service: 'cart' })]);
    expect(tally.services().map((s) => s.service)).toEqual(['cart', 'search']);
  });
});
