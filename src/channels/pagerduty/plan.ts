import { type HttpOutcome, retryHint } from '../../deliver/http-outcome.js';
import type { PageWithMembers, RolledBack } from '../../store/store.js';
import type { PersonLookup } from '../people.js';
import type { IncidentRef } from './client.js';
import { type PagerDutyConfig, pagerdutyFor } from './config.js';
import type { PageState } from './state.js';

// PagerDuty's choices for one page, as a pure function: given the page, what PagerDuty has been told of it (its
// stored state, and the answers of the requests this attempt has made so far) and the time, the next request to
// make and why, or the attempt's outcome. pages.ts executes: it asks, makes the request, adds its answer, and
// asks again until the outcome.
//
// Every request is idempotent: the page's dedup key names the PagerDuty alert (Events API) or incident (REST), so
// an attempt repeated after a crash or a timeout lands on the same one.

/** The answers of the requests this attempt has made, each at most once. */
export interface Answers {
  /** The person's PagerDuty user, from the people directory. */
  user?: PersonLookup;
  /** POST /incidents. */
  create?: HttpOutcome<{ incident?: IncidentRef }>;
  /** The open incident with the page's key, created by an earlier attempt; null when there is none (or no answer). */
  found?: IncidentRef | null;
  /** The incident's status in PagerDuty now; null when it did not say. */
  current?: string | null;
  /** The note telling an open incident of the alerts that joined it. */
  note?: HttpOutcome<unknown>;
  /** The note telling an open incident that the deploy it is about was rolled back. */
  rollbackNote?: HttpOutcome<unknown>;
  /** The note adding evidence judged after the incident was created. */
  evidenceNote?: HttpOutcome<unknown>;
  /** PUT /incidents/{id} resolving it. */
  resolveIncident?: HttpOutcome<unknown>;
  /** What came of asking the responders (the merger): best effort, recorded on the page. */
  responders?: string;
  /** Events API: the full trigger, its minimal form after a refusal, the resolve. */
  trigger?: HttpOutcome<unknown>;
  minimal?: HttpOutcome<unknown>;
  resolveEvent?: HttpOutcome<unknown>;
}

/** What PagerDuty has been told of the page: before this attempt, and during it. */
export interface Told {
  state: PageState;
  answers: Answers;
}

/** Who a page went to, as changepager_pages_total counts it. */
export type Route = 'oncall' | 'fallback' | 'author';

/** How the attempt ends: the worker's result, the state to remember, and what to count. */
export type Outcome = (
  | { ok: true }
  | {
      ok: false;
      retry: boolean;
      retryAfterMs?: number;
      /** Retry no later than this (epoch ms): the author fallback deadline. */
      retryBy?: number;
    }
) & {
  detail: string;
  /** Merged into the page's stored state, even when the attempt failed. */
  patch?: Partial<PageState>;
  /** The page action PagerDuty accepted in this attempt. */
  counted?: { route: Route; action: 'trigger' | 'resolve' | 'note' };
};

export type Action =
  /** Events API: open the alert, or update it (the same dedup key) with the page's members now. */
  | { type: 'trigger_event'; routingKey: string; route: 'oncall' | 'fallback'; fallback?: string }
  /** Events API: the short form of a page PagerDuty refused in full. */
  | { type: 'trigger_minimal'; routingKey: string; why: string }
  | { type: 'resolve_event'; routingKey: string }
  | { type: 'find_user'; email: string }
  | { type: 'create_incident'; serviceId: string; userId: string }
  /** The open incident with the page's key: one an earlier attempt created without hearing back. */
  | { type: 'find_incident' }
  | { type: 'check_incident'; incident: string }
  /** A note on the open incident listing the members from `from` on. */
  | { type: 'add_note'; incident: string; from: number }
  /** A note on the open incident saying that these rollbacks undid the deploy it is about. */
  | { type: 'note_rollback'; incident: string; rollbacks: RolledBack[] }
  /** A note on the incident with the evidence of these members (episode ids), judged after it was created. */
  | { type: 'add_evidence_note'; incident: string; episodes: number[] }
  | { type: 'resolve_incident'; incident: string }
  | { type: 'request_responders'; incident: string; requesterId: string; emails: string[] }
  | { type: 'done'; outcome: Outcome };

export interface Step {
  action: Action;
  why: string;
}

/**
 * The next step for a page: an on-call page goes through the Events API, so does a person's page that fell back
 * to on-call before; any other person's page is an incident assigned to them.
 */
export function nextAction(page: PageWithMembers, told: Told, now: number, config: PagerDutyConfig): Step {
  const target = page.page.target;
  if (target.kind === 'oncall') return viaEvents({ page, told, now, config }, 'oncall');
  if (told.state.via === 'events') return viaEvents({ page, told, now, config }, 'fallback', told.state.fallback);
  return viaIncident({ page, told, now, config }, target.email);
}

interface Input {
  page: PageWithMembers;
  told: Told;
  now: number;
  config: PagerDutyConfig;
}

const step = (action: Action, why: string): Step => ({ action, why });
const done = (outcome: Outcome, why: string): Step => ({ action: { type: 'done', outcome }, why });

/**
 * Events API: trigger while any member fires, resolve after. A failure that may pass (a timeout, 429, 5xx) is
 * retried with backoff; a refusal (any other 4xx) would be refused again, so the minimal form goes out instead.
 */
function viaEvents(input: Input, route: 'oncall' | 'fallback', fallback?: string): Step {
  const { page, told } = input;
  const { answers, state } = told;
  const service = page.page.service;
  const routingKey = pagerdutyFor(input.config, service).routingKey;
  const keep: Partial<PageState> = fallback ? { via: 'events', fallback } : { via: 'events' };
  if (!routingKey) {
    return done(
      { ok: false, retry: true, detail: `no PagerDuty routing key for service "${service}"`, patch: keep },
      'config validation requires a default routing key, so this is a config reloaded wrong: keep the row visible',
    );
  }

  if (page.page.status === 'resolved') {
    const res = answers.resolveEvent;
    if (res?.ok) {
      return done(
        {
          ok: true,
          detail: 'resolve event accepted',
          patch: { ...keep, state: 'resolved' },
          counted: { route, action: 'resolve' },
        },
        'PagerDuty resolved the alert',
      );
    }
    if (res) {
      return done(
        { ok: false, retry: res.retry, detail: `resolve event: ${res.detail}`, ...retryHint(res), patch: keep },
        'the resolve did not go through',
      );
    }
    if (state.state !== 'triggered' && !state.attempted) {
      return done(
        { ok: true, detail: 'resolved before it was paged: nothing to resolve', patch: keep },
        'no trigger reached PagerDuty, so there is no alert to resolve',
      );
    }
    // A trigger that failed may still have reached PagerDuty (a timeout); a resolve of a key PagerDuty never
    // opened is dropped by PagerDuty, so resolving is harmless when it did not.
    return step({ type: 'resolve_event', routingKey }, 'every alert of the page has resolved');
  }

  const members = page.members.length;
  const res = answers.trigger;
  if (!res) {
    return step(
      { type: 'trigger_event', routingKey, route, ...(fallback ? { fallback } : {}) },
      fallback ? `paging on-call instead of the author: ${fallback}` : 'the page fires: open or update its alert',
    );
  }
  const triggered = (form?: 'minimal'): Partial<PageState> => ({
    ...keep,
    state: 'triggered',
    members,
    ...(form ? { form } : {}),
  });
  if (res.ok) {
    return done(
      {
        ok: true,
        detail: fallback ? `paged on-call instead: ${fallback}` : `trigger event accepted (${members} alerts)`,
        patch: triggered(),
        counted: { route, action: 'trigger' },
      },
      'PagerDuty accepted the trigger',
    );
  }
  const attempted: Partial<PageState> = { ...keep, attempted: true };
  if (res.retry) {
    return done(
      { ok: false, retry: true, detail: `trigger event: ${res.detail}`, ...retryHint(res), patch: attempted },
      'the trigger failed in a way a later try can get past',
    );
  }
  const short = answers.minimal;
  if (!short) {
    return step(
      { type: 'trigger_minimal', routingKey, why: `PagerDuty refused the full page (${res.detail})` },
      'PagerDuty refused the full event and would refuse it again: its minimal form reaches on-call',
    );
  }
  if (!short.ok) {
    // Refused too (an invalid routing key, say): final. The worker logs it at error; it is not retried.
    return done(
      {
        ok: false,
        retry: short.retry,
        detail: `minimal trigger event: ${short.detail}`,
        ...retryHint(short),
        patch: attempted,
      },
      'the minimal form did not go through either',
    );
  }
  return done(
    {
      ok: true,
      detail: `minimal trigger event accepted${fallback ? `; paged on-call instead: ${fallback}` : ''}`,
      patch: triggered('minimal'),
      counted: { route, action: 'trigger' },
    },
    'PagerDuty accepted the minimal form',
  );
}

/** An incident assigned to the person: created, told of alerts that join it, resolved with the page. */
function viaIncident(input: Input, email: string): Step {
  const { told } = input;
  // Someone resolved the incident in PagerDuty while the page stayed open here. A note on a resolved incident
  // pages nobody, so the page gets a new incident (the key only dedups against open ones).
  const state: PageState =
    told.answers.current === 'resolved'
      ? { ...told.state, incident: undefined, members: 0, attempted: false }
      : told.state;
  const effective = { ...input, told: { ...told, state } };
  if (input.page.page.status === 'resolved') return resolveIncident(effective);
  if (state.incident) return joinIncident(effective, state.incident);
  return createIncident(effective, email);
}

function resolveIncident({ told }: Input): Step {
  const { answers, state } = told;
  const res = answers.resolveIncident;
  if (res && (res.ok || isAlreadyResolved(res))) {
    return done(
      {
        ok: true,
        detail: res.ok ? 'incident resolved' : 'incident was already resolved',
        patch: { state: 'resolved' },
        counted: { route: 'author', action: 'resolve' },
      },
      res.ok ? 'PagerDuty resolved the incident' : 'someone resolved it in PagerDuty first',
    );
  }
  if (res) {
    return done(
      { ok: false, retry: res.retry, detail: `resolve incident: ${res.detail}`, ...retryHint(res) },
      'the resolve did not go through',
    );
  }
  let incident = state.incident;
  if (!incident && state.attempted) {
    if (answers.found === undefined) {
      return step(
        { type: 'find_incident' },
        'a create that failed may have created the incident after all (a timeout)',
      );
    }
    incident = answers.found?.id;
  }
  if (!incident) {
    return done(
      { ok: true, detail: 'resolved before the incident was created: nothing to resolve' },
      'no incident exists to resolve',
    );
  }
  return step({ type: 'resolve_incident', incident }, 'every alert of the page has resolved');
}

/**
 * Evidence judged after the incident was created (the budget ran out first) is added as a note, once the incident
 * is known to be still open: it informs, it re-routes nobody. Then the alerts that joined and the rollbacks of the
 * deploy are told (joinMembers).
 */
function joinIncident(input: Input, incident: string): Step {
  const { page, told } = input;
  const { answers, state } = told;
  const noted = state.evidenceNoted ?? [];
  const unnoted = page.members.filter((m) => m.decision.evidence?.late && !noted.includes(m.id)).map((m) => m.id);
  if (unnoted.length === 0) return joinMembers(input, incident, {});
  if (answers.current === undefined) {
    return step(
      { type: 'check_incident', incident },
      'the evidence arrived after the incident was created: a note only reaches the person while the incident is open',
    );
  }
  const res = answers.evidenceNote;
  if (!res) {
    return step(
      { type: 'add_evidence_note', incident, episodes: unnoted },
      'the evidence arrived after the incident was created: a note, and nobody re-routed',
    );
  }
  if (!res.ok) {
    return done(
      {
        ok: false,
        retry: res.retry,
        detail: `evidence note on incident ${incident}: ${res.detail}`,
        ...retryHint(res),
      },
      'the evidence note did not go through',
    );
  }
  return joinMembers(input, incident, { evidenceNoted: [...noted, ...unnoted] });
}

/**
 * Alerts that joined an open incident are added as a note, instead of paging again; so is a rollback of the
 * deploy the incident is about (the author learns it while the alert still fires). `evidence` is what an
 * evidence note just sent adds to the state, kept whatever happens next.
 */
function joinMembers({ page, told }: Input, incident: string, evidence: Partial<PageState>): Step {
  const { answers, state } = told;
  const members = page.members.length;
  const rollbacks = page.rolledBack ?? [];
  const joined = members > state.members;
  const noted = state.rollbacks ?? 0;
  const rolledBack = rollbacks.length > noted;
  if (!joined && !rolledBack) {
    if (evidence.evidenceNoted) {
      return done(
        { ok: true, detail: `incident ${incident} told of the evidence`, patch: evidence },
        'PagerDuty took the evidence note',
      );
    }
    return done({ ok: true, detail: `incident ${incident} is up to date` }, 'PagerDuty knows every alert of the page');
  }
  if (answers.current === undefined) {
    return step(
      { type: 'check_incident', incident },
      joined
        ? 'alerts joined the page: a note only reaches the person while the incident is open'
        : 'the deploy was rolled back: a note only reaches the person while the incident is open',
    );
  }
  const toldOf: string[] = [];
  if (joined) {
    const res = answers.note;
    if (!res) {
      return step(
        { type: 'add_note', incident, from: state.members },
        `${members - state.members} alert(s) joined the open incident: a note, not a second page`,
      );
    }
    if (!res.ok) {
      return done(
        {
          ok: false,
          retry: res.retry,
          detail: `note on incident ${incident}: ${res.detail}`,
          ...retryHint(res),
          ...(evidence.evidenceNoted ? { patch: evidence } : {}),
        },
        'the note did not go through',
      );
    }
    toldOf.push(`${members - state.members} more alert(s)`);
  }
  if (rolledBack) {
    const res = answers.rollbackNote;
    if (!res) {
      return step(
        { type: 'note_rollback', incident, rollbacks: rollbacks.slice(noted) },
        'the deploy this incident is about was rolled back: a note tells the person',
      );
    }
    if (!res.ok) {
      // What went out (the alerts' note, the evidence note) is not sent again with the retry.
      const sent = { ...(joined ? { members } : {}), ...evidence };
      return done(
        {
          ok: false,
          retry: res.retry,
          detail: `rollback note on incident ${incident}: ${res.detail}`,
          ...retryHint(res),
          ...(Object.keys(sent).length > 0 ? { patch: sent } : {}),
        },
        'the rollback note did not go through',
      );
    }
    toldOf.push('the rollback');
  }
  return done(
    {
      ok: true,
      detail: `incident ${incident} told of ${toldOf.join(' and ')}`,
      patch: { members, ...(rolledBack ? { rollbacks: rollbacks.length } : {}), ...evidence },
      counted: { route: 'author', action: 'note' },
    },
    'PagerDuty took the note',
  );
}

function createIncident(input: Input, email: string): Step {
  const { page, told, now, config } = input;
  const { answers, state } = told;
  const service = page.page.service;
  const route = pagerdutyFor(config, service);
  const missing = !config.apiToken
    ? 'pagerduty.api_token_env'
    : !config.from
      ? 'pagerduty.from'
      : !route.serviceId
        ? 'pagerduty service_id'
        : undefined;
  if (missing || !route.serviceId) {
    return fallBack(input, `cannot page a person: ${missing} is not configured for ${service || 'this service'}`);
  }

  const user = answers.user;
  if (!user) return step({ type: 'find_user', email }, 'the incident is assigned to the person’s PagerDuty user');
  if (!user.found) {
    if (user.retry) return retryOrFallBack(input, user.detail, user.retryAfterMs);
    return fallBack(input, user.detail);
  }

  const created = answers.create;
  if (!created) {
    return step(
      { type: 'create_incident', serviceId: route.serviceId, userId: user.userId },
      `page ${email} with an incident assigned to them`,
    );
  }
  let ref = created.ok ? created.data.incident : undefined;
  // PagerDuty refuses a second open incident with the page's key (400): an earlier attempt created it and its
  // answer was lost. Past the fallback deadline, a create that failed or timed out may have worked too: look
  // for it before paging on-call.
  const mayExist =
    (!created.ok && created.status === 400) ||
    (now >= page.page.openedAt + config.fallbackAfterMs && (state.attempted || !created.ok));
  if (!ref && mayExist) {
    if (answers.found === undefined) {
      return step({ type: 'find_incident' }, 'an earlier attempt may have created the incident without hearing back');
    }
    ref = answers.found ?? undefined;
  }

  if (!ref) {
    if (!created.ok && !created.retry) return fallBack(input, `PagerDuty refused the incident: ${created.detail}`);
    const next = retryOrFallBack(
      input,
      `create incident: ${created.ok ? 'no incident in the answer' : created.detail}`,
      created.ok ? undefined : created.retryAfterMs,
    );
    // The create may have worked: a resolve must look for the incident.
    if (next.action.type === 'done' && !next.action.outcome.ok) {
      const { outcome } = next.action;
      return done({ ...outcome, patch: { ...outcome.patch, attempted: true } }, next.why);
    }
    return next;
  }

  const withEvidence = page.members.filter((m) => m.decision.evidence !== undefined).map((m) => m.id);
  const responders = [...new Set(page.members.flatMap((m) => m.decision.responders))];
  if (responders.length > 0 && answers.responders === undefined) {
    return step(
      { type: 'request_responders', incident: ref.id, requesterId: user.userId, emails: responders },
      'policy includes the merger: ask them to respond too (best effort, the page has gone out)',
    );
  }
  return done(
    {
      ok: true,
      detail: `incident ${ref.id} created for ${email}${answers.responders ? `; responders: ${answers.responders}` : ''}`,
      patch: {
        via: 'incident',
        incident: ref.id,
        state: 'triggered',
        members: page.members.length,
        // The incident's body carries the decisions' sentences, which name a rollback known when they were made,
        // and the evidence judged by then (late or not): neither is noted again.
        rollbacks: page.rolledBack?.length ?? 0,
        ...(withEvidence.length > 0 ? { evidenceNoted: withEvidence } : {}),
        user: user.userId,
        ...(ref.html_url ? { url: ref.html_url } : {}),
        ...(answers.responders ? { responders: answers.responders } : {}),
      },
      counted: { route: 'author', action: 'trigger' },
    },
    created.ok && created.data.incident ? 'PagerDuty created the incident' : 'an earlier attempt created it: adopt it',
  );
}

/** Gives up on the person: on-call is paged through the Events API, with the reason in the page. */
function fallBack(input: Input, reason: string): Step {
  return viaEvents(input, 'fallback', reason);
}

/** A retryable failure while paging the person: retry until the fallback deadline, then page on-call. */
function retryOrFallBack(input: Input, detail: string, retryAfterMs?: number): Step {
  const { page, now, config } = input;
  const deadline = page.page.openedAt + config.fallbackAfterMs;
  if (now >= deadline) {
    return fallBack(input, `still failing after ${Math.round(config.fallbackAfterMs / 1000)} s: ${detail}`);
  }
  return done(
    { ok: false, retry: true, detail, retryBy: deadline, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) },
    'paging the person failed in a way a later try can get past: retry, by the fallback deadline at the latest',
  );
}

/** PagerDuty REST error 1001 "Incident Already Resolved" (https://developer.pagerduty.com/docs/rest-api-v2/errors/). */
function isAlreadyResolved(res: HttpOutcome<unknown>): boolean {
  if (res.ok || res.status !== 400) return false;
  const code = (res.data as { error?: { code?: unknown } } | undefined)?.error?.code;
  return code === 1001;
}
