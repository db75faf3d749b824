import type { Logger } from 'pino';
import type { Config } from '../../config/load.js';
import { policyFor } from '../../config/policy.js';
import { compareLink } from '../../core/links.js';
import type { Deploy } from '../../core/types.js';
import { failureReason, type HttpOutcome, retryHint } from '../../deliver/http-outcome.js';
import type { DeliveryResult, PageNotifier } from '../../deliver/notifier.js';
import type { Metrics } from '../../metrics.js';
import type { PageWithMembers } from '../../store/store.js';
import type { PagerDutyClient } from './client.js';
import { type PagerDutyConfig, pagerdutyFor } from './config.js';
import { eventMinimal, eventResolve, eventTrigger, incidentCreate, joinedNote, type PageContext } from './payload.js';
import type { UserDirectory } from './users.js';

// How a page reaches PagerDuty. What has been done for a page is kept in its `delivered` record:
//   via        'incident' (REST, assigned to a person) or 'events' (Events API v2: on-call, or a fallback)
//   incident   the incident id, once created          state    'triggered' | 'resolved'
//   members    how many alerts PagerDuty was told of   fallback why a person's page went to on-call instead
//   form       'minimal' when PagerDuty refused the full event and the short form went out instead
// Every step is idempotent: the page's dedup key names the PagerDuty alert or incident, so an attempt repeated
// after a crash or a timeout lands on the same one.

export interface PagerDutyNotifierDeps {
  config: Config;
  pd: PagerDutyConfig;
  client: PagerDutyClient;
  users: UserDirectory;
  getDeploy: (id: string) => Promise<Deploy | undefined>;
  recordUnmapped: (who: string, reason: string) => Promise<void>;
  metrics: Metrics;
  log: Logger;
  now: () => number;
}

type Delivered = Record<string, string>;

export function createPagerDutyNotifier(deps: PagerDutyNotifierDeps): PageNotifier {
  const { pd, client, metrics, now } = deps;
  const externalUrl = deps.config.externalUrl;
  /** Links back to changepager, when its address is configured. */
  const links = externalUrl ? { externalUrl } : {};
  /** Links back to changepager, when its address is configured. */
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

  /**
   * Events API: trigger while any member fires, resolve after. A failure that may pass (a timeout, 429, 5xx) is
   * retried with capped backoff; a refusal (any other 4xx) would be refused again, so the trigger goes out once
   * more in its minimal form, which reaches on-call whatever in the full one PagerDuty would not take.
   */
  async function viaEvents(
    ctx: PageContext,
    done: Delivered,
    route: 'oncall' | 'fallback',
    fallback?: string,
  ): Promise<DeliveryResult> {
    const routingKey = pagerdutyFor(pd, ctx.page.service).routingKey;
    const keep: Delivered = fallback ? { via: 'events', fallback } : { via: 'events' };
    if (!routingKey) {
      // Config validation requires a default routing key, so this is a config reloaded wrong; keep it visible.
      return {
        ok: false,
        retry: true,
        detail: `no PagerDuty routing key for service "${ctx.page.service}"`,
        delivered: keep,
      };
    }
    if (ctx.page.status === 'resolved') {
      // A trigger that failed may still have reached PagerDuty (a timeout): resolve it too. A resolve for a key
      // PagerDuty never opened is dropped by PagerDuty, so this is harmless when it did not.
      if (done.state !== 'triggered' && !done.attempted)
        return { ok: true, detail: 'resolved before it was paged: nothing to resolve', delivered: keep };
      const res = observe(await client.sendEvent(eventResolve(ctx, routingKey)));
      if (!res.ok)
        return {
          ok: false,
          retry: res.retry,
          detail: `resolve event: ${res.detail}`,
          ...retryHint(res),
          delivered: keep,
        };
      metrics.pages.inc({ route, action: 'resolve' });
      return { ok: true, detail: 'resolve event accepted', delivered: { ...keep, state: 'resolved' } };
    }
    const triggered = (form?: 'minimal'): Delivered => ({
      ...keep,
      state: 'triggered',
      members: String(ctx.members.length),
      ...(form ? { form } : {}),
    });
    const options = { maxBytes: pd.maxEventBytes, ...(fallback ? { fallbackReason: fallback } : {}), ...links };
    const sentAt = now();
    const res = observe(await client.sendEvent(eventTrigger(ctx, routingKey, options)));
    if (res.ok) {
      metrics.pages.inc({ route, action: 'trigger' });
      return {
        ok: true,
        detail: fallback
          ? `paged on-call instead: ${fallback}`
          : `trigger event accepted (${ctx.members.length} alerts)`,
        delivered: triggered(),
      };
    }
    const attempted = { ...keep, attempted: 'true' };
    if (res.retry)
      return {
        ok: false,
        retry: true,
        detail: `trigger event: ${res.detail}`,
        ...retryHint(res),
        delivered: attempted,
      };

    deps.log.warn({ page: ctx.page.id, detail: res.detail }, 'PagerDuty refused the page; sending its minimal form');
    const refused = {
      outcome: 'failed',
      detail: `trigger event refused: ${res.detail}`,
      at: sentAt,
      durationMs: now() - sentAt,
    } as const;
    const why = `PagerDuty refused the full page (${res.detail})`;
    const short = observe(await client.sendEvent(eventMinimal(ctx, routingKey, { why, ...links })));
    if (!short.ok) {
      // Refused too (an invalid routing key, say): final. The worker logs it at error; it is not retried.
      return {
        ok: false,
        retry: short.retry,
        detail: `minimal trigger event: ${short.detail}`,
        ...retryHint(short),
        delivered: attempted,
        earlier: [refused],
      };
    }
    metrics.pages.inc({ route, action: 'trigger' });
    return {
      ok: true,
      detail: `minimal trigger event accepted${fallback ? `; paged on-call instead: ${fallback}` : ''}`,
      delivered: triggered('minimal'),
      earlier: [refused],
    };
  }

  /** Gives up on the person: on-call is paged through the Events API, with the reason in custom_details. */
  function fallBack(ctx: PageContext, done: Delivered, reason: string): Promise<DeliveryResult> {
    deps.log.warn({ page: ctx.page.id, target: ctx.page.target, reason }, 'paging on-call instead of the author');
    return viaEvents(ctx, done, 'fallback', reason);
  }

  /** A retryable failure while paging the person: retry until the fallback deadline, then page on-call. */
  function retryOrFallBack(
    ctx: PageContext,
    done: Delivered,
    detail: string,
    retryAfterMs?: number,
  ): Promise<DeliveryResult> | DeliveryResult {
    const deadline = ctx.page.openedAt + pd.fallbackAfterMs;
    if (now() >= deadline)
      return fallBack(ctx, done, `still failing after ${Math.round(pd.fallbackAfterMs / 1000)} s: ${detail}`);
    return {
      ok: false,
      retry: true,
      detail,
      retryBy: deadline,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    };
  }

  async function viaIncident(ctx: PageContext, email: string, done: Delivered): Promise<DeliveryResult> {
    const incident = done.incident;
    if (ctx.page.status === 'resolved') {
      // A create that failed may have created it after all (a timeout): find it by its key and resolve it too.
      const target = incident || (done.attempted ? (await existingIncident(ctx.page.dedupKey))?.id : undefined);
      if (!target) return { ok: true, detail: 'resolved before the incident was created: nothing to resolve' };
      const res = observe(await client.updateIncident(target, { type: 'incident_reference', status: 'resolved' }));
      if (res.ok || isAlreadyResolved(res)) {
        metrics.pages.inc({ route: 'author', action: 'resolve' });
        return {
          ok: true,
          detail: res.ok ? 'incident resolved' : 'incident was already resolved',
          delivered: { state: 'resolved' },
        };
      }
      return { ok: false, retry: res.retry, detail: `resolve incident: ${res.detail}`, ...retryHint(res) };
    }
    if (incident) return joinIncident(ctx, email, incident, done);

    const route = pagerdutyFor(pd, ctx.page.service);
    const missing = !pd.apiToken
      ? 'pagerduty.api_token_env'
      : !pd.from
        ? 'pagerduty.from'
        : !route.serviceId
          ? 'pagerduty service_id'
          : undefined;
    if (missing)
      return fallBack(
        ctx,
        done,
        `cannot page a person: ${missing} is not configured for ${ctx.page.service || 'this service'}`,
      );

    const user = await deps.users(email);
    if (!user.found) {
      if (user.retry) return retryOrFallBack(ctx, done, user.detail, user.retryAfterMs);
      metrics.unmappedPeople.inc({ reason: 'no_pagerduty_user' });
      await deps.recordUnmapped(email, 'no_pagerduty_user');
      return fallBack(ctx, done, user.detail);
    }

    const created = observe(
      await client.createIncident(incidentCreate(ctx, route.serviceId as string, user.userId, externalUrl)),
    );
    let ref = created.ok ? created.data.incident : undefined;
    if (!created.ok && created.status === 400) ref = await existingIncident(ctx.page.dedupKey); // created by an earlier attempt
    // Past the fallback deadline, a create that timed out may have worked: look for it before paging on-call.
    if (!ref && now() >= ctx.page.openedAt + pd.fallbackAfterMs && (done.attempted || !created.ok)) {
      ref = await existingIncident(ctx.page.dedupKey);
    }
    if (!ref) {
      if (!created.ok && !created.retry)
        return fallBack(ctx, done, `PagerDuty refused the incident: ${created.detail}`);
      const result = await retryOrFallBack(
        ctx,
        done,
        `create incident: ${created.ok ? 'no incident in the answer' : created.detail}`,
        created.ok ? undefined : created.retryAfterMs,
      );
      return result.ok ? result : { ...result, delivered: { ...result.delivered, attempted: 'true' } };
    }
    metrics.pages.inc({ route: 'author', action: 'trigger' });
    const delivered: Delivered = {
      via: 'incident',
      incident: ref.id,
      state: 'triggered',
      members: String(ctx.members.length),
      user: user.userId,
      ...(ref.html_url ? { url: ref.html_url } : {}),
    };
    const responders = await addResponders(ctx, ref.id, user.userId);
    if (responders) delivered.responders = responders;
    return {
      ok: true,
      detail: `incident ${ref.id} created for ${email}${responders ? `; responders: ${responders}` : ''}`,
      delivered,
    };
  }

  /** Alerts that joined an open incident are added as a note, instead of paging again. */
  async function joinIncident(
    ctx: PageContext,
    email: string,
    incident: string,
    done: Delivered,
  ): Promise<DeliveryResult> {
    const told = Number(done.members ?? 0);
    if (ctx.members.length <= told) return { ok: true, detail: `incident ${incident} is up to date` };
    // Someone may have resolved the incident in PagerDuty while the page stayed open here: a note on a resolved
    // incident pages nobody, so the new alert gets a new incident (the key only dedups against open ones).
    const current = observe(await client.getIncident(incident));
    if (current.ok && current.data.incident?.status === 'resolved') {
      return viaIncident(ctx, email, { ...done, incident: '', members: '0', attempted: '' });
    }
    const res = observe(await client.addNote(incident, joinedNote(ctx.members.slice(told))));
    if (!res.ok)
      return { ok: false, retry: res.retry, detail: `note on incident ${incident}: ${res.detail}`, ...retryHint(res) };
    metrics.pages.inc({ route: 'author', action: 'note' });
    return {
      ok: true,
      detail: `incident ${incident} told of ${ctx.members.length - told} more alert(s)`,
      delivered: { members: String(ctx.members.length) },
    };
  }

  /** An incident an earlier attempt created (its response was lost): PagerDuty refuses a second one with the key. */
  async function existingIncident(key: string) {
    const res = observe(await client.findIncidentsByKey(key));
    return res.ok ? res.data.incidents?.[0] : undefined;
  }

  /** The merger, when policy includes them, as a responder. Best effort: the page itself has gone out. */
  async function addResponders(ctx: PageContext, incident: string, requesterId: string): Promise<string | undefined> {
    const emails = [...new Set(ctx.members.flatMap((m) => m.decision.responders))];
    if (emails.length === 0) return undefined;
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

  return {
    channel: 'pagerduty',
    async deliver(page) {
      const ctx = await context(page);
      const done = page.page.delivered;
      const target = page.page.target;
      if (target.kind === 'oncall') return viaEvents(ctx, done, 'oncall');
      if (done.via === 'events') return viaEvents(ctx, done, 'fallback', done.fallback);
      return viaIncident(ctx, target.email, done);
    },
  };
}

/** PagerDuty REST error 1001 "Incident Already Resolved" (https://developer.pagerduty.com/docs/rest-api-v2/errors/). */
function isAlreadyResolved(res: HttpOutcome<unknown>): boolean {
  if (res.ok || res.status !== 400) return false;
  const code = (res.data as { error?: { code?: unknown } } | undefined)?.error?.code;
  return code === 1001;
}
