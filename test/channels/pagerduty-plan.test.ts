import { describe, expect, it } from 'vitest';
import type { PagerDutyConfig } from '../../src/channels/pagerduty/config.js';
import { type Action, type Answers, nextAction } from '../../src/channels/pagerduty/plan.js';
import type { PageState } from '../../src/channels/pagerduty/state.js';
import type { Target } from '../../src/core/types.js';
import type { HttpOutcome } from '../../src/deliver/http-outcome.js';
import type { EpisodeRecord, PageWithMembers } from '../../src/store/store.js';

// PagerDuty's planner: given a page, what PagerDuty has been told of it (stored, and answered so far in this
// attempt) and the time, the next request and why, or how the attempt ends. The HTTP tests
// (test/deliver/pagerduty.test.ts) run the same plans against the recording stub.

/** What the step must match: the action's fields that matter to the case. */
type Expected = DeepPartial<Action>;
type DeepPartial<T> = T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

const OPENED = Date.parse('2026-11-26T11:10:00Z');
const FALLBACK_AFTER = 60_000;
const ALICE: Target = { kind: 'person', email: 'alice@example.com' };
const ONCALL: Target = { kind: 'oncall' };

const CONFIG: PagerDutyConfig = {
  eventsHost: 'events.pagerduty.com',
  apiUrl: 'https://api.pagerduty.com',
  apiToken: 'pd-token',
  from: 'changepager@example.com',
  timeoutMs: 10_000,
  fallbackAfterMs: FALLBACK_AFTER,
  userCacheTtlMs: 3_600_000,
  changeEvents: true,
  maxEventBytes: 512_000,
  defaults: { serviceId: 'PDEFAULT', routingKey: 'default-key' },
  services: { checkout: { serviceId: 'PCHECKOUT', routingKey: 'checkout-key' } },
};

function member(i: number, responders: string[]): EpisodeRecord {
  return {
    id: i + 1,
    fingerprint: `a${String(i).padStart(15, '0')}`,
    startsAt: '2026-11-26T11:09:00.000000000Z',
    startsAtMs: OPENED - 60_000,
    status: 'firing',
    labels: { alertname: 'HighErrorRate', service: 'checkout' },
    annotations: {},
    generatorURL: '',
    groupKey: '{}:{alertname="HighErrorRate"}',
    receiver: 'changepager',
    externalURL: '',
    firstSeenAt: OPENED,
    lastSeenAt: OPENED,
    decision: {
      reason: 'author_paged',
      sentence: 'Paging alice@example.com.',
      service: 'checkout',
      environment: 'production',
      policy: 'author',
      suspects: [],
      targets: [ALICE],
      responders,
      notify: [],
      wouldPage: [],
      decidedAt: OPENED,
    },
  };
}

interface Case {
  target?: Target;
  status?: 'open' | 'resolved';
  service?: string;
  members?: number;
  responders?: string[];
  state?: Partial<PageState>;
  answers?: Answers;
  /** Milliseconds after the page opened. */
  at?: number;
  config?: Partial<PagerDutyConfig>;
  /** Members (by index) whose evidence was judged: late, after the incident was created, or in time. */
  evidence?: { late: number[]; inTime?: number[] };
  rolledBack?: PageWithMembers['rolledBack'];
}

function plan(c: Case) {
  const page: PageWithMembers = {
    page: {
      id: 1,
      groupKey: '{}:{alertname="HighErrorRate"}',
      service: c.service ?? 'checkout',
      environment: 'production',
      target: c.target ?? ALICE,
      seq: 1,
      status: c.status ?? 'open',
      openedAt: OPENED,
      dedupKey: 'changepager-0123',
      delivered: {},
    },
    members: Array.from({ length: c.members ?? 1 }, (_, i) => {
      const m = member(i, c.responders ?? []);
      const late = c.evidence?.late.includes(i);
      if (!late && !c.evidence?.inTime?.includes(i)) return m;
      const evidence = {
        verdict: 'same' as const,
        sentence: 'error ratio 0.3 % on v2 vs 0.3 % on v1',
        metrics: [],
        from: OPENED - 600_000,
        to: OPENED,
        mode: 'required' as const,
        effect: late ? ('stands' as const) : ('convicted' as const),
        late: Boolean(late),
        at: OPENED + 5_000,
      };
      return { ...m, decision: { ...m.decision, evidence } };
    }),
    ...(c.rolledBack ? { rolledBack: c.rolledBack } : {}),
  };
  const state: PageState = { members: 0, attempted: false, ...c.state };
  return nextAction(page, { state, answers: c.answers ?? {} }, OPENED + (c.at ?? 1000), { ...CONFIG, ...c.config });
}

const ok = <T>(data: T): HttpOutcome<T> => ({ ok: true, status: 200, data });
const failed = (status: number | undefined, detail: string, more: { retryAfterMs?: number; data?: unknown } = {}) =>
  ({
    ok: false,
    retry: status === undefined || status === 429 || status >= 500,
    ...(status === undefined ? {} : { status }),
    detail,
    ...more,
  }) as const;
const RB = { deployId: 'd1', rollbackId: 'rb-1', at: OPENED + 60_000, version: 'v1' };
const INCIDENT = { id: 'PINC1', html_url: 'https://acme.pagerduty.com/incidents/PINC1' };
const found = { found: true as const, userId: 'PALICE' };
const LATE = FALLBACK_AFTER + 1000;

describe('the PagerDuty plan of a page', () => {
  describe('for on-call, through the Events API', () => {
    it.each<[string, Case, Expected]>([
      [
        'a firing page not yet triggered: trigger with the service’s routing key',
        { target: ONCALL },
        { type: 'trigger_event', routingKey: 'checkout-key', route: 'oncall' },
      ],
      [
        'a page of a service without its own key: the default key',
        { target: ONCALL, service: 'search' },
        { type: 'trigger_event', routingKey: 'default-key' },
      ],
      [
        'a page triggered before that alerts joined: trigger again, the dedup key updates the same alert',
        { target: ONCALL, members: 2, state: { via: 'events', state: 'triggered', members: 1 } },
        { type: 'trigger_event', route: 'oncall' },
      ],
      [
        'trigger accepted: delivered, with what PagerDuty was told',
        { target: ONCALL, members: 2, answers: { trigger: ok({}) } },
        {
          type: 'done',
          outcome: {
            ok: true,
            detail: 'trigger event accepted (2 alerts)',
            patch: { via: 'events', state: 'triggered', members: 2 },
            counted: { route: 'oncall', action: 'trigger' },
          },
        },
      ],
      [
        'a trigger answered 429: retry when the server says, remembering it may have arrived',
        { target: ONCALL, answers: { trigger: failed(429, 'HTTP 429', { retryAfterMs: 30_000 }) } },
        {
          type: 'done',
          outcome: {
            ok: false,
            retry: true,
            retryAfterMs: 30_000,
            detail: 'trigger event: HTTP 429',
            patch: { via: 'events', attempted: true },
          },
        },
      ],
      [
        'a trigger refused (400): send its minimal form at once, saying why',
        { target: ONCALL, answers: { trigger: failed(400, 'HTTP 400: Event object is invalid') } },
        { type: 'trigger_minimal', why: 'PagerDuty refused the full page (HTTP 400: Event object is invalid)' },
      ],
      [
        'the minimal form accepted: delivered, in its minimal form',
        { target: ONCALL, answers: { trigger: failed(400, 'HTTP 400'), minimal: ok({}) } },
        {
          type: 'done',
          outcome: {
            ok: true,
            detail: 'minimal trigger event accepted',
            patch: { via: 'events', state: 'triggered', members: 1, form: 'minimal' },
          },
        },
      ],
      [
        'the minimal form refused too: failed for good',
        { target: ONCALL, answers: { trigger: failed(400, 'HTTP 400'), minimal: failed(400, 'HTTP 400: bad key') } },
        { type: 'done', outcome: { ok: false, retry: false, detail: 'minimal trigger event: HTTP 400: bad key' } },
      ],
      [
        'no routing key at all (a config reloaded wrong): retried, and visible',
        { target: ONCALL, config: { defaults: {}, services: {} } },
        {
          type: 'done',
          outcome: { ok: false, retry: true, detail: 'no PagerDuty routing key for service "checkout"' },
        },
      ],
      [
        'resolved before it was paged: nothing to send',
        { target: ONCALL, status: 'resolved' },
        { type: 'done', outcome: { ok: true, detail: 'resolved before it was paged: nothing to resolve' } },
      ],
      [
        'resolved after a trigger that timed out: resolve, it may have arrived',
        { target: ONCALL, status: 'resolved', state: { via: 'events', attempted: true } },
        { type: 'resolve_event', routingKey: 'checkout-key' },
      ],
      [
        'resolved after it was triggered: resolve',
        { target: ONCALL, status: 'resolved', state: { via: 'events', state: 'triggered', members: 1 } },
        { type: 'resolve_event' },
      ],
      [
        'resolve accepted: delivered, resolved',
        { target: ONCALL, status: 'resolved', state: { state: 'triggered' }, answers: { resolveEvent: ok({}) } },
        {
          type: 'done',
          outcome: {
            ok: true,
            detail: 'resolve event accepted',
            patch: { via: 'events', state: 'resolved' },
            counted: { route: 'oncall', action: 'resolve' },
          },
        },
      ],
      [
        'resolve answered 503: retried',
        {
          target: ONCALL,
          status: 'resolved',
          state: { state: 'triggered' },
          answers: { resolveEvent: failed(503, 'HTTP 503') },
        },
        { type: 'done', outcome: { ok: false, retry: true, detail: 'resolve event: HTTP 503' } },
      ],
    ])('%s', (_intent, c, expected) => {
      const step = plan(c);
      expect(step.action).toMatchObject(expected);
      expect(step.why).not.toBe('');
    });
  });

  describe('for a person, as an incident assigned to them', () => {
    it.each<[string, Case, Expected]>([
      ['no incident yet: find their PagerDuty user', {}, { type: 'find_user', email: 'alice@example.com' }],
      [
        'their user found: create the incident on the service’s PagerDuty service',
        { answers: { user: found } },
        { type: 'create_incident', serviceId: 'PCHECKOUT', userId: 'PALICE' },
      ],
      [
        'incident created: delivered, with its id, address and assignee',
        { members: 2, answers: { user: found, create: ok({ incident: INCIDENT }) } },
        {
          type: 'done',
          outcome: {
            ok: true,
            detail: 'incident PINC1 created for alice@example.com',
            patch: {
              via: 'incident',
              incident: 'PINC1',
              url: INCIDENT.html_url,
              state: 'triggered',
              members: 2,
              user: 'PALICE',
            },
            counted: { route: 'author', action: 'trigger' },
          },
        },
      ],
      [
        'incident created, and policy names the merger: ask them to respond',
        { responders: ['bob@example.com'], answers: { user: found, create: ok({ incident: INCIDENT }) } },
        { type: 'request_responders', incident: 'PINC1', requesterId: 'PALICE', emails: ['bob@example.com'] },
      ],
      [
        '…and once asked, delivered with what came of it',
        {
          responders: ['bob@example.com'],
          answers: { user: found, create: ok({ incident: INCIDENT }), responders: 'not added: HTTP 402' },
        },
        {
          type: 'done',
          outcome: {
            ok: true,
            detail: 'incident PINC1 created for alice@example.com; responders: not added: HTTP 402',
            patch: { responders: 'not added: HTTP 402' },
          },
        },
      ],
      [
        'no API token: page on-call instead at once, saying what is missing',
        { config: { apiToken: undefined } },
        {
          type: 'trigger_event',
          route: 'fallback',
          fallback: 'cannot page a person: pagerduty.api_token_env is not configured for checkout',
        },
      ],
      [
        'no PagerDuty service for incidents: page on-call instead',
        { config: { defaults: { routingKey: 'default-key' }, services: {} } },
        {
          type: 'trigger_event',
          routingKey: 'default-key',
          fallback: 'cannot page a person: pagerduty service_id is not configured for checkout',
        },
      ],
      [
        'not a PagerDuty user: page on-call instead at once, saying why',
        {
          answers: {
            user: { found: false, retry: false, detail: 'no PagerDuty user has the email alice@example.com' },
          },
        },
        {
          type: 'trigger_event',
          route: 'fallback',
          fallback: 'no PagerDuty user has the email alice@example.com',
        },
      ],
      [
        'the user lookup failed before the fallback deadline: retry by the deadline',
        { answers: { user: { found: false, retry: true, detail: 'PagerDuty user lookup failed: HTTP 503' } } },
        {
          type: 'done',
          outcome: {
            ok: false,
            retry: true,
            retryBy: OPENED + FALLBACK_AFTER,
            detail: 'PagerDuty user lookup failed: HTTP 503',
          },
        },
      ],
      [
        'the user lookup still failing at the deadline: page on-call instead',
        {
          at: LATE,
          answers: { user: { found: false, retry: true, detail: 'PagerDuty user lookup failed: HTTP 503' } },
        },
        {
          type: 'trigger_event',
          fallback: 'still failing after 60 s: PagerDuty user lookup failed: HTTP 503',
        },
      ],
      [
        'the create failed before the deadline: retry by the deadline, remembering it may have worked',
        { answers: { user: found, create: failed(500, 'HTTP 500') } },
        {
          type: 'done',
          outcome: {
            ok: false,
            retry: true,
            retryBy: OPENED + FALLBACK_AFTER,
            detail: 'create incident: HTTP 500',
            patch: { attempted: true },
          },
        },
      ],
      [
        'the create timed out past the deadline: look for the incident it may have created',
        { at: LATE, answers: { user: found, create: failed(undefined, 'timeout: no answer within 10000 ms') } },
        { type: 'find_incident' },
      ],
      [
        '…found: adopt it instead of paging on-call',
        {
          at: LATE,
          answers: { user: found, create: failed(undefined, 'timeout'), found: INCIDENT },
        },
        {
          type: 'done',
          outcome: { ok: true, patch: { via: 'incident', incident: 'PINC1' }, counted: { route: 'author' } },
        },
      ],
      [
        '…none: page on-call instead, saying how long it failed',
        { at: LATE, answers: { user: found, create: failed(500, 'HTTP 500'), found: null } },
        { type: 'trigger_event', fallback: 'still failing after 60 s: create incident: HTTP 500' },
      ],
      [
        'a create answered 400 (the key is taken): look for the incident an earlier attempt created',
        { answers: { user: found, create: failed(400, 'HTTP 400: Incident key already exists') } },
        { type: 'find_incident' },
      ],
      [
        '…found: adopt it',
        { answers: { user: found, create: failed(400, 'HTTP 400'), found: INCIDENT } },
        { type: 'done', outcome: { ok: true, patch: { incident: 'PINC1' } } },
      ],
      [
        '…none: PagerDuty refused the incident, page on-call instead',
        { answers: { user: found, create: failed(400, 'HTTP 400: Invalid Input Provided'), found: null } },
        {
          type: 'trigger_event',
          route: 'fallback',
          fallback: 'PagerDuty refused the incident: HTTP 400: Invalid Input Provided',
        },
      ],
      [
        'an earlier create timed out, and this one too, past the deadline: look before paging on-call',
        { at: LATE, state: { attempted: true }, answers: { user: found, create: ok({}) } },
        { type: 'find_incident' },
      ],
      [
        'falling back, the trigger failed: retry it, still as a fallback, remembering it may have worked',
        {
          answers: {
            user: { found: false, retry: false, detail: 'no PagerDuty user has the email alice@example.com' },
            trigger: failed(502, 'HTTP 502'),
          },
        },
        {
          type: 'done',
          outcome: {
            ok: false,
            retry: true,
            detail: 'trigger event: HTTP 502',
            patch: {
              via: 'events',
              fallback: 'no PagerDuty user has the email alice@example.com',
              attempted: true,
            },
          },
        },
      ],
      [
        'fallen back before: on through the Events API, with the reason, asking nobody’s user again',
        { state: { via: 'events', fallback: 'no PagerDuty user has the email alice@example.com' } },
        { type: 'trigger_event', route: 'fallback', fallback: 'no PagerDuty user has the email alice@example.com' },
      ],
      [
        'an open incident that knows every alert: nothing to do',
        { members: 2, state: { via: 'incident', incident: 'PINC1', state: 'triggered', members: 2 } },
        { type: 'done', outcome: { ok: true, detail: 'incident PINC1 is up to date' } },
      ],
      [
        'evidence judged after the incident was created: first check the incident is still open',
        { evidence: { late: [0] }, state: { via: 'incident', incident: 'PINC1', state: 'triggered', members: 1 } },
        { type: 'check_incident', incident: 'PINC1' },
      ],
      [
        '…open: a note with the evidence, nobody re-routed',
        {
          evidence: { late: [0] },
          state: { via: 'incident', incident: 'PINC1', state: 'triggered', members: 1 },
          answers: { current: 'acknowledged' },
        },
        { type: 'add_evidence_note', incident: 'PINC1', episodes: [1] },
      ],
      [
        '…resolved in PagerDuty: no note on it, a new incident for the person (which carries the evidence)',
        {
          evidence: { late: [0] },
          state: { via: 'incident', incident: 'PINC1', state: 'triggered', members: 1 },
          answers: { current: 'resolved' },
        },
        { type: 'find_user', email: 'alice@example.com' },
      ],
      [
        '…noted: delivered, and remembered so that it is noted once',
        {
          evidence: { late: [0] },
          state: { via: 'incident', incident: 'PINC1', state: 'triggered', members: 1 },
          answers: { current: 'triggered', evidenceNote: ok({}) },
        },
        {
          type: 'done',
          outcome: { ok: true, detail: 'incident PINC1 told of the evidence', patch: { evidenceNoted: [1] } },
        },
      ],
      [
        '…noted before: up to date',
        {
          evidence: { late: [0] },
          state: { via: 'incident', incident: 'PINC1', state: 'triggered', members: 1, evidenceNoted: [1] },
        },
        { type: 'done', outcome: { ok: true, detail: 'incident PINC1 is up to date' } },
      ],
      [
        '…the note failed: retried',
        {
          evidence: { late: [0] },
          state: { via: 'incident', incident: 'PINC1', state: 'triggered', members: 1 },
          answers: { current: 'triggered', evidenceNote: failed(503, 'HTTP 503') },
        },
        { type: 'done', outcome: { ok: false, retry: true, detail: 'evidence note on incident PINC1: HTTP 503' } },
      ],
      [
        'an incident created after the evidence arrived late carries it: remembered as noted',
        { evidence: { late: [0] }, members: 2, answers: { user: found, create: ok({ incident: INCIDENT }) } },
        {
          type: 'done',
          outcome: { ok: true, patch: { via: 'incident', incident: 'PINC1', members: 2, evidenceNoted: [1] } },
        },
      ],
      [
        '…so the next attempt adds no note saying the evidence came after the incident',
        {
          evidence: { late: [0] },
          members: 2,
          state: { via: 'incident', incident: 'PINC1', state: 'triggered', members: 2, evidenceNoted: [1] },
        },
        { type: 'done', outcome: { ok: true, detail: 'incident PINC1 is up to date' } },
      ],
      [
        'evidence in time was in the incident when it was created: no note',
        { evidence: { late: [], inTime: [0] }, state: { via: 'incident', incident: 'PINC1', members: 1 } },
        { type: 'done', outcome: { ok: true, detail: 'incident PINC1 is up to date' } },
      ],
      [
        'late evidence and alerts that joined: the evidence noted, then the joined alerts, both remembered',
        {
          members: 2,
          evidence: { late: [0] },
          state: { via: 'incident', incident: 'PINC1', state: 'triggered', members: 1 },
          answers: { evidenceNote: ok({}), current: 'triggered', note: ok({}) },
        },
        { type: 'done', outcome: { ok: true, patch: { members: 2, evidenceNoted: [1] } } },
      ],
      [
        'the deploy was rolled back: first check the incident is still open',
        { rolledBack: [RB], state: { via: 'incident', incident: 'PINC1', state: 'triggered', members: 1 } },
        { type: 'check_incident', incident: 'PINC1' },
      ],
      [
        '…open: a note saying so, with the rollbacks not noted yet',
        {
          rolledBack: [RB],
          state: { via: 'incident', incident: 'PINC1', state: 'triggered', members: 1 },
          answers: { current: 'triggered' },
        },
        { type: 'note_rollback', incident: 'PINC1', rollbacks: [RB] },
      ],
      [
        '…noted: delivered, and the next attempt knows it',
        {
          rolledBack: [RB],
          state: { via: 'incident', incident: 'PINC1', members: 1 },
          answers: { current: 'triggered', rollbackNote: ok({}) },
        },
        {
          type: 'done',
          outcome: {
            ok: true,
            detail: 'incident PINC1 told of the rollback',
            patch: { members: 1, rollbacks: 1 },
            counted: { route: 'author', action: 'note' },
          },
        },
      ],
      [
        'a rollback already noted: nothing to do',
        { rolledBack: [RB], state: { via: 'incident', incident: 'PINC1', members: 1, rollbacks: 1 } },
        { type: 'done', outcome: { ok: true, detail: 'incident PINC1 is up to date' } },
      ],
      [
        'alerts joined and a rollback came: the alerts’ note first, then the rollback’s',
        {
          members: 2,
          rolledBack: [RB],
          state: { via: 'incident', incident: 'PINC1', members: 1 },
          answers: { current: 'triggered', note: ok({}) },
        },
        { type: 'note_rollback', incident: 'PINC1', rollbacks: [RB] },
      ],
      [
        '…the rollback note failed: retried, without the alerts’ note again',
        {
          members: 2,
          rolledBack: [RB],
          state: { via: 'incident', incident: 'PINC1', members: 1 },
          answers: { current: 'triggered', note: ok({}), rollbackNote: failed(503, 'HTTP 503') },
        },
        {
          type: 'done',
          outcome: {
            ok: false,
            retry: true,
            detail: 'rollback note on incident PINC1: HTTP 503',
            patch: { members: 2 },
          },
        },
      ],
      [
        'alerts joined its page: first check the incident is still open',
        { members: 3, state: { via: 'incident', incident: 'PINC1', state: 'triggered', members: 1 } },
        { type: 'check_incident', incident: 'PINC1' },
      ],
      [
        '…open: a note listing the alerts that joined, not a second page',
        {
          members: 3,
          state: { via: 'incident', incident: 'PINC1', state: 'triggered', members: 1 },
          answers: { current: 'triggered' },
        },
        { type: 'add_note', incident: 'PINC1', from: 1 },
      ],
      [
        '…its status unknown (the check failed): a note all the same',
        {
          members: 3,
          state: { via: 'incident', incident: 'PINC1', members: 1 },
          answers: { current: null },
        },
        { type: 'add_note', incident: 'PINC1', from: 1 },
      ],
      [
        '…noted: delivered, PagerDuty knows every alert now',
        {
          members: 3,
          state: { via: 'incident', incident: 'PINC1', members: 1 },
          answers: { current: 'acknowledged', note: ok({}) },
        },
        {
          type: 'done',
          outcome: {
            ok: true,
            detail: 'incident PINC1 told of 2 more alert(s)',
            patch: { members: 3 },
            counted: { route: 'author', action: 'note' },
          },
        },
      ],
      [
        '…the note failed: retried',
        {
          members: 3,
          state: { via: 'incident', incident: 'PINC1', members: 1 },
          answers: { current: 'triggered', note: failed(500, 'HTTP 500') },
        },
        { type: 'done', outcome: { ok: false, retry: true, detail: 'note on incident PINC1: HTTP 500' } },
      ],
      [
        '…resolved in PagerDuty meanwhile: a new incident for the page, as if it had none',
        {
          members: 2,
          state: { via: 'incident', incident: 'PINC1', state: 'triggered', members: 1 },
          answers: { current: 'resolved' },
        },
        { type: 'find_user', email: 'alice@example.com' },
      ],
      [
        '…and created: delivered with the new incident, telling it of every alert',
        {
          members: 2,
          state: { via: 'incident', incident: 'PINC1', state: 'triggered', members: 1 },
          answers: { current: 'resolved', user: found, create: ok({ incident: { id: 'PINC2' } }) },
        },
        {
          type: 'done',
          outcome: { ok: true, patch: { incident: 'PINC2', members: 2, state: 'triggered' } },
        },
      ],
      [
        'the page resolved: resolve its incident',
        { status: 'resolved', state: { via: 'incident', incident: 'PINC1', state: 'triggered', members: 1 } },
        { type: 'resolve_incident', incident: 'PINC1' },
      ],
      [
        'resolved: delivered',
        {
          status: 'resolved',
          state: { via: 'incident', incident: 'PINC1' },
          answers: { resolveIncident: ok({}) },
        },
        {
          type: 'done',
          outcome: {
            ok: true,
            detail: 'incident resolved',
            patch: { state: 'resolved' },
            counted: { route: 'author', action: 'resolve' },
          },
        },
      ],
      [
        'someone resolved it in PagerDuty first (error 1001): delivered all the same',
        {
          status: 'resolved',
          state: { via: 'incident', incident: 'PINC1' },
          answers: {
            resolveIncident: failed(400, 'HTTP 400: 1001', { data: { error: { code: 1001 } } }),
          },
        },
        { type: 'done', outcome: { ok: true, detail: 'incident was already resolved', patch: { state: 'resolved' } } },
      ],
      [
        'the resolve failed otherwise: retried',
        {
          status: 'resolved',
          state: { via: 'incident', incident: 'PINC1' },
          answers: { resolveIncident: failed(503, 'HTTP 503') },
        },
        { type: 'done', outcome: { ok: false, retry: true, detail: 'resolve incident: HTTP 503' } },
      ],
      [
        'resolved before an incident was created: nothing to resolve',
        { status: 'resolved' },
        {
          type: 'done',
          outcome: { ok: true, detail: 'resolved before the incident was created: nothing to resolve' },
        },
      ],
      [
        'resolved after a create that timed out: look for the incident it may have created',
        { status: 'resolved', state: { attempted: true } },
        { type: 'find_incident' },
      ],
      [
        '…found: resolve it',
        { status: 'resolved', state: { attempted: true }, answers: { found: INCIDENT } },
        { type: 'resolve_incident', incident: 'PINC1' },
      ],
      [
        '…none: nothing to resolve',
        { status: 'resolved', state: { attempted: true }, answers: { found: null } },
        { type: 'done', outcome: { ok: true } },
      ],
      [
        'a person’s page that fell back, resolved: resolve the on-call alert',
        { status: 'resolved', state: { via: 'events', fallback: 'no PagerDuty user', state: 'triggered' } },
        { type: 'resolve_event', routingKey: 'checkout-key' },
      ],
    ])('%s', (_intent, c, expected) => {
      const step = plan(c);
      expect(step.action).toMatchObject(expected);
      expect(step.why).not.toBe('');
    });

    it('remembers no evidence as noted when the incident is created before any was judged', () => {
      const step = plan({ answers: { user: found, create: ok({ incident: INCIDENT }) } });
      expect(step.action.type === 'done' && step.action.outcome.patch).toMatchObject({ incident: 'PINC1' });
      expect(step.action.type === 'done' && step.action.outcome.patch?.evidenceNoted).toBeUndefined();
    });
  });
});
