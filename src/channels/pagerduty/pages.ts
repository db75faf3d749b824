import type { Logger } from 'pino';
import type { Config } from '../../config/load.js';
import { policyFor } from '../../config/policy.js';
import { compareLink } from '../../core/links.js';
import type { Deploy } from '../../core/types.js';
import { failureReason, type HttpOutcome } from '../../deliver/http-outcome.js';
import type { DeliveryResult, EarlierRequest, PageNotifier } from '../../deliver/notifier.js';
import type { Metrics } from '../../metrics.js';
import type { PageWithMembers } from '../../store/store.js';
import type { PeopleDirectory } from '../people.js';
import type { PagerDutyClient } from './client.js';
import type { PagerDutyConfig } from './config.js';
import {
  eventMinimal,
  eventResolve,
  eventTrigger,
  evidenceNote,
  incidentCreate,
  joinedNote,
  type PageContext,
  rollbackNote,
} from './payload.js';
import { type Action, nextAction, type Outcome, type Told } from './plan.js';
import { pageStatePatch, readPageState } from './state.js';

// How a page reaches PagerDuty: plan.ts decides each step, this file makes the requests. Nothing here chooses
// what to do next; it only asks the planner, does what it says, and adds the answer to what it tells it.

/** More steps than any plan takes: reaching it is a bug, which the worker retries rather than lose the page. */
const MAX_STEPS = 16;

export interface PagerDutyNotifierDeps {
  config: Config;
  pd: PagerDutyConfig;
  client: PagerDutyClient;
  users: PeopleDirectory;
  getDeploy: (id: string) => Promise<Deploy | undefined>;
  recordUnmapped: (who: string, reason: string) => Promise<void>;
  metrics: Metrics;
  log: Logger;
  now: () => number;
}

export function createPagerDutyNotifier(deps: PagerDutyNotifierDeps): PageNotifier {
  const { pd, client, metrics, log, now } = deps;
  const externalUrl = deps.config.externalUrl;
  /** Links back to changepager, when its address is configured. */
  const links = externalUrl ? { externalUrl } : {};

  /** Counts failures by reason, once per request, whatever happens next. */
  function observe<T>(res: HttpOutcome<T>): HttpOutcome<T> {
    if (!res.ok) metrics.deliveryFailures.inc({ channel: 'pagerduty', reason: failureReason(res) });
    return res;
  }

  async function context(page: PageWithMembers): Promise<PageContext> {
    const deploys = new Map<string, Deploy>();
    for (const id of new Set(page.members.map((m) => m.decision.deployId))) {
      const d = id === undefined ? undefined : await deps.getDeploy(id);
      if (d) deploys.set(d.id, d);
    }
    const template = policyFor(deps.config, page.page.service || undefined).compareUrl;
    const first = [...deploys.values()][0];
    return template && first
      ? { ...page, deploys, compareUrl: compareLink(template, first, now()) }
      : { ...page, deploys };
  }

  /** One attempt's requests, in order, and the answers the planner reads. */
  interface Attempt {
    ctx: PageContext;
    told: Told;
    /** Requests recorded besides the last one: a full trigger PagerDuty refused before its minimal form. */
    earlier: EarlierRequest[];
    /** When the last trigger was sent, and how long its answer took. */
    trigger?: { at: number; durationMs: number };
  }

  async function perform(action: Exclude<Action, { type: 'done' }>, attempt: Attempt): Promise<void> {
    const { ctx, told } = attempt;
    const answers = told.answers;
    switch (action.type) {
      case 'trigger_event': {
        if (action.fallback && told.state.via !== 'events') {
          log.warn(
            { page: ctx.page.id, target: ctx.page.target, reason: action.fallback },
            'paging on-call instead of the author',
          );
        }
        const options = {
          maxBytes: pd.maxEventBytes,
          ...(action.fallback ? { fallbackReason: action.fallback } : {}),
          ...links,
        };
        const at = now();
        answers.trigger = observe(await client.sendEvent(eventTrigger(ctx, action.routingKey, options)));
        attempt.trigger = { at, durationMs: now() - at };
        return;
      }
      case 'trigger_minimal': {
        const refused = answers.trigger;
        const detail = refused && !refused.ok ? refused.detail : '';
        log.warn({ page: ctx.page.id, detail }, 'PagerDuty refused the page; sending its minimal form');
        const timing = attempt.trigger ?? { at: now(), durationMs: 0 };
        attempt.earlier.push({ outcome: 'failed', detail: `trigger event refused: ${detail}`, ...timing });
        answers.minimal = observe(
          await client.sendEvent(eventMinimal(ctx, action.routingKey, { why: action.why, ...links })),
        );
        return;
      }
      case 'resolve_event':
        answers.resolveEvent = observe(await client.sendEvent(eventResolve(ctx, action.routingKey)));
        return;
      case 'find_user': {
        const user = await deps.users(action.email);
        answers.user = user;
        if (!user.found && !user.retry) {
          metrics.unmappedPeople.inc({ reason: 'no_pagerduty_user' });
          await deps.recordUnmapped(action.email, 'no_pagerduty_user');
        }
        return;
      }
      case 'create_incident':
        answers.create = observe(
          await client.createIncident(incidentCreate(ctx, action.serviceId, action.userId, externalUrl)),
        );
        return;
      case 'find_incident': {
        const res = observe(await client.findIncidentsByKey(ctx.page.dedupKey));
        answers.found = (res.ok && res.data.incidents?.[0]) || null;
        return;
      }
      case 'check_incident': {
        const res = observe(await client.getIncident(action.incident));
        answers.current = (res.ok && res.data.incident?.status) || null;
        return;
      }
      case 'add_note':
        answers.note = observe(await client.addNote(action.incident, joinedNote(ctx.members.slice(action.from))));
        return;
      case 'note_rollback':
        answers.rollbackNote = observe(await client.addNote(action.incident, rollbackNote(action.rollbacks)));
        return;
      case 'add_evidence_note': {
        const noted = ctx.members.filter((m) => action.episodes.includes(m.id));
        answers.evidenceNote = observe(await client.addNote(action.incident, evidenceNote(noted)));
        return;
      }
      case 'resolve_incident':
        answers.resolveIncident = observe(
          await client.updateIncident(action.incident, { type: 'incident_reference', status: 'resolved' }),
        );
        return;
      case 'request_responders':
        answers.responders = await requestResponders(action.incident, action.requesterId, action.emails);
        return;
    }
  }

  /** The people named as responders, asked to respond. Best effort: what came of it is recorded on the page. */
  async function requestResponders(incident: string, requesterId: string, emails: string[]): Promise<string> {
    const targets: string[] = [];
    const skipped: string[] = [];
    for (const email of emails) {
      const user = await deps.users(email);
      if (user.found) targets.push(user.userId);
      else skipped.push(`${email} (${user.detail})`);
    }
    if (targets.length === 0) return `not added: ${skipped.join('; ')}`;
    const res = observe(
      await client.requestResponders(incident, {
        requester_id: requesterId,
        message: 'changepager: you merged the change this alert followed.',
        responder_request_targets: targets.map((id) => ({ responder_request_target: { id, type: 'user_reference' } })),
      }),
    );
    // 402: the account lacks coordinated responding. Recorded, and the page stands.
    const outcome = res.ok ? `requested ${targets.join(', ')}` : `not added: ${res.detail}`;
    return skipped.length > 0 ? `${outcome}; skipped ${skipped.join('; ')}` : outcome;
  }

  function result({ patch, counted, ...outcome }: Outcome, attempt: Attempt): DeliveryResult {
    if (counted) metrics.pages.inc(counted);
    return {
      ...outcome,
      ...(patch ? { delivered: pageStatePatch(patch) } : {}),
      ...(attempt.earlier.length > 0 ? { earlier: attempt.earlier } : {}),
    };
  }

  return {
    channel: 'pagerduty',
    async deliver(page) {
      const attempt: Attempt = {
        ctx: await context(page),
        told: { state: readPageState(page.page.delivered), answers: {} },
        earlier: [],
      };
      for (let i = 0; i < MAX_STEPS; i++) {
        const { action, why } = nextAction(page, attempt.told, now(), pd);
        log.debug({ page: page.page.id, action: action.type, why }, 'pagerduty: next step');
        if (action.type === 'done') return result(action.outcome, attempt);
        await perform(action, attempt);
      }
      throw new Error(`the PagerDuty plan for page ${page.page.id} did not finish in ${MAX_STEPS} steps`);
    },
  };
}
