import type { Logger } from 'pino';
import { type Config, evidenceFor } from '../config/load.js';
import { seriesOf } from '../core/evidence-route.js';
import { judgeEvidence } from '../core/judge.js';
import type { OutboxHandler } from '../deliver/notifier.js';
import type { Metrics } from '../metrics.js';
import type { EvidenceStore } from '../store/store.js';
import { gatherEvidence } from './gather.js';
import type { PrometheusClient } from './prometheus.js';

// The `evidence` outbox rows: one per new episode whose decision pages a person, due at once. The handler gathers
// the evidence for the episode's deploy within what is left of the budget (the page was held until receipt +
// budget), judges it, and stores it with the decision; the store then makes the held page and DMs due now, or
// moves the episode to the on-call page when the metrics clear the deploy. A row taken after the budget ran out
// (a restart, a backlog) still gathers, with the request timeout as its deadline: the page went out without it,
// and the evidence is added to it as it stands.
//
// Nothing here can hold a page back: the page row falls due at receipt + budget whatever this handler does.

export interface EvidenceHandlerDeps {
  config: Config;
  store: EvidenceStore;
  /** Absent without a prometheus section: the rows are then retired unjudged. */
  client?: PrometheusClient;
  now: () => number;
  log: Logger;
  metrics: Metrics;
  /** Wakes the delivery lanes after the evidence made pages or DMs due. */
  kick: () => void;
}

export function evidenceHandler({
  config,
  store,
  client,
  now,
  log,
  metrics,
  kick,
}: EvidenceHandlerDeps): OutboxHandler {
  const prometheus = config.prometheus;
  return {
    channel: 'prometheus',
    async handle(ref) {
      if (!prometheus || !client) return { ok: true, detail: 'no prometheus section: no evidence to gather' };
      const episodeId = Number(ref);
      const subject = await store.evidenceSubject(episodeId);
      if (!subject) return { ok: false, retry: false, detail: `episode ${ref} does not exist` };
      const { episode, deploy } = subject;
      const policy = evidenceFor(config, episode.decision.service);
      if (!deploy) return { ok: true, detail: 'the decision names no deploy: nothing to judge' };
      if (episode.decision.evidence) return { ok: true, detail: 'evidence already judged' };

      const started = now();
      const left = episode.firstSeenAt + prometheus.budgetMs - started;
      const judgeInput = await gatherEvidence({
        deploy,
        alertStartsAtMs: episode.startsAtMs,
        comparisons: policy.comparisons,
        client,
        settings: prometheus,
        now: started,
        deadlineMs: left > 0 ? left : prometheus.requestTimeoutMs,
      });
      const evidence = judgeEvidence(judgeInput, prometheus);
      const mode = policy.mode === 'off' ? 'advisory' : policy.mode;
      const series = seriesOf(judgeInput);
      const result = await store.recordEvidence(
        episodeId,
        series.length > 0 ? { ...evidence, series } : evidence,
        mode,
        now(),
      );
      if (!result) return { ok: false, retry: false, detail: `episode ${ref} does not exist` };
      metrics.evidence.inc({ verdict: evidence.verdict, effect: result.effect });
      kick();
      log.info(
        { episode: episodeId, verdict: evidence.verdict, effect: result.effect, late: result.late },
        evidence.sentence,
      );
      return {
        ok: true,
        detail: `${evidence.verdict}, ${result.effect}${result.late ? ' (after the page went out)' : ''}: ${evidence.sentence}`,
      };
    },
  };
}
