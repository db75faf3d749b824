import type { DecidedEpisode } from './stats.js';

// Precision of the decisions that name a person, per service over a period: how many paged a person, how often
// that person answered "Not my change", what the evidence did (confirmed the person, or cleared the deploy so
// on-call was paged instead), and how often the evidence and the person disagreed: the metrics said the change
// was worse and its author said it was not theirs. Pure: the episodes come from the store's hygiene facts.

export interface ServicePrecision {
  service: string;
  /** Decisions that page a person as they stand (after any evidence). */
  pagedPerson: number;
  /** Of those, the ones the person answered "Not my change". */
  notMyChange: number;
  /** Decisions whose evidence was judged, whatever it said. */
  evidenceJudged: number;
  /** The evidence confirmed the person: the metrics were worse, in time to say so in the page. */
  confirmed: number;
  /** The evidence cleared the deploy: on-call was paged instead of the person. */
  exonerated: number;
  /** The evidence said worse and the person said "Not my change". */
  disagreements: number;
  /** Of the pages to a person, the share nobody disowned: 1 − notMyChange / pagedPerson; null without pages. */
  precision: number | null;
}

/** Tallies the decided episodes of a period, a page of facts at a time. */
export class PrecisionTally {
  private readonly byService = new Map<string, Omit<ServicePrecision, 'precision'>>();

  add(episodes: readonly DecidedEpisode[]): void {
    for (const e of episodes) {
      if (e.deployId === undefined) continue;
      const service = e.service ?? '';
      let s = this.byService.get(service);
      if (!s) {
        s = {
          service,
          pagedPerson: 0,
          notMyChange: 0,
          evidenceJudged: 0,
          confirmed: 0,
          exonerated: 0,
          disagreements: 0,
        };
        this.byService.set(service, s);
      }
      if (e.pagedPerson) {
        s.pagedPerson++;
        if (e.notMine) s.notMyChange++;
      }
      if (e.evidence) {
        s.evidenceJudged++;
        if (e.evidence.effect === 'convicted') s.confirmed++;
        if (e.evidence.effect === 'exonerated') s.exonerated++;
        if (e.evidence.verdict === 'worse' && e.notMine) s.disagreements++;
      }
    }
  }

  /** Every service with a decision that named a change, sorted by name. */
  services(): ServicePrecision[] {
    return [...this.byService.values()]
      .sort((a, b) => a.service.localeCompare(b.service))
      .map((s) => ({ ...s, precision: s.pagedPerson === 0 ? null : 1 - s.notMyChange / s.pagedPerson }));
  }
}
