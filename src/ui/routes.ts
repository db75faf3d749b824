import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import type { Logger } from 'pino';
import type { Config } from '../config/load.js';
import { humanGap } from '../core/time.js';
import { ApiError } from '../errors.js';
import { type Caller, callerOf, cookieValue, tokenCheck } from '../http/auth.js';
import {
  newSession,
  PLAIN_SESSION_COOKIE,
  readSession,
  SECURE_SESSION_COOKIE,
  SESSION_COOKIES,
} from '../http/session.js';
import { decisionJson, deployJson } from '../http/views.js';
import type { Metrics } from '../metrics.js';
import { type ReadStore, type SessionStore, StorageError, type TimelineStore } from '../store/store.js';
import { type Assets, loadAssets } from './assets.js';
import type { Html } from './html.js';
import type { LoginLimiter } from './login-limiter.js';
import { buildTimeline, type DeployVerdict, type Timeline } from './model.js';
import { fitRange, isPathSegment, parseRange, rangeSearch, type TimelineRange } from './range.js';
import { loginPage, problemPage, timelinePage } from './render.js';
import { storeVerdicts } from './verdicts.js';

// The timeline page: GET / and /services/{name} render deploys and alerts per service on the
// server; GET /v1/timeline is the same data as JSON, which the page script polls for its live refresh;
// /login and /logout manage the page's session cookie; /ui/* serves the page's three static files.

const REFRESH_SECONDS = 10;

export interface UiDeps {
  config: Config;
  store: TimelineStore & SessionStore & ReadStore;
  now: () => number;
  log: Logger;
  /** The canary verdicts of these deploys; the default judges them like GET /v1/deploys/{id}/verdict. */
  verdicts?: (deployIds: readonly string[], now: number) => Promise<ReadonlyMap<string, DeployVerdict>>;
  /** Where the static files are; the default is static/ beside this module. */
  staticDir?: string;
}

/**
 * Headers for everything the UI serves. The policy forbids inline script and style (the page has neither),
 * loads only from this origin, and refuses framing (clickjacking).
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

function securityHeaders(res: Response): void {
  res.set({
    'Content-Security-Policy': CSP,
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'same-origin',
    'Cross-Origin-Opener-Policy': 'same-origin',
  });
}

const pageHeaders: RequestHandler = (_req, res, next) => {
  securityHeaders(res);
  // The page shows names and emails: no shared or back-button cache may keep it.
  res.set('Cache-Control', 'no-store');
  next();
};

/**
 * Reads what a view shows: at most `max_items` deploys and alerts (the latest), each deploy with at most
 * `max_changes` changes, the deploys before the range that its alerts were attributed to, the delivery of their
 * pages and the deploys' verdicts. A range given by nothing in the address is then fitted to what was found.
 */
async function loadTimeline(deps: UiDeps, asked: TimelineRange): Promise<Timeline> {
  const { store } = deps;
  const limits = deps.config.timeline;
  const now = deps.now();
  const query = {
    from: asked.from,
    to: asked.to,
    limit: limits.maxItems + 1,
    listLimit: limits.maxChanges,
    ...(asked.service === undefined ? {} : { service: asked.service }),
    ...(asked.environment === undefined ? {} : { environment: asked.environment }),
  };
  const [deploys, episodes] = await Promise.all([store.deploysBetween(query), store.episodesBetween(query)]);
  const truncated = { deploys: deploys.length > limits.maxItems, alerts: episodes.length > limits.maxItems };
  const shownDeploys = deploys.slice(0, limits.maxItems);
  const shownEpisodes = episodes.slice(0, limits.maxItems);
  // Alerts in the range may be attributed to a deploy before it: fetch those too, for the line and the links.
  const known = new Set(shownDeploys.map((d) => d.deploy.id));
  const missing = [...new Set(shownEpisodes.map((e) => e.decision.deployId))].filter(
    (id): id is string => id !== undefined && !known.has(id),
  );
  const [earlier, deliveries] = await Promise.all([
    missing.length === 0 ? [] : store.deploySummaries(missing, limits.maxChanges),
    store.pageDeliveries(shownEpisodes.map((e) => e.id)),
  ]);
  const all = [...shownDeploys, ...earlier];
  const verdicts = await (deps.verdicts ?? storeVerdicts(deps))(
    all.map((d) => d.deploy.id),
    now,
  );
  const range = fitRange(asked, [...shownDeploys.map((d) => d.deploy.at), ...shownEpisodes.map((e) => e.startsAtMs)]);
  return buildTimeline({
    range,
    now,
    deploys: all,
    episodes: shownEpisodes,
    deliveries,
    truncated,
    verdicts,
    bounds: limits,
  });
}

/** The JSON of GET /v1/timeline. */
export function timelineJson(t: Timeline, limit: number) {
  const iso = (ms: number) => new Date(ms).toISOString();
  const isoOrNull = (ms: number | undefined) => (ms === undefined ? null : iso(ms));
  return {
    from: iso(t.range.from),
    to: iso(t.range.to),
    live: t.range.live,
    fitted: t.range.lookbackMs !== undefined,
    now: iso(t.now),
    revision: t.revision,
    truncated: t.truncated,
    limit,
    lanes: t.lanes.map((l) => ({
      service: l.service ?? null,
      deploys: l.deploys.map((d) => d.key),
      alerts: l.alerts.map((a) => a.key),
      keys: l.keys ?? null,
    })),
    deploys: t.deploys.map((d) => ({
      key: d.key,
      ...deployJson(d.deploy),
      what: d.what,
      inRange: d.inRange,
      alerts: d.alerts,
      links: d.links,
      verdict: d.verdict ?? null,
      undid: d.undid ?? [],
      rolledBackBy: d.rolledBackBy ?? null,
      changeCount: d.changeCount,
      hostCount: d.hostCount,
      clipped: d.clipped,
      href: d.href,
    })),
    alerts: t.alerts.map((a) => {
      const e = a.episode;
      return {
        key: a.key,
        fingerprint: e.fingerprint,
        alertname: a.alertname,
        service: a.service ?? null,
        environment: e.decision.environment,
        status: e.status,
        startsAt: e.startsAt,
        endsAt: a.endMs === undefined ? null : iso(a.endMs),
        paged: a.paged,
        pagedText: a.pagedText,
        deployKey: a.deployKey ?? null,
        labels: e.labels,
        annotations: e.annotations,
        generatorURL: e.generatorURL,
        links: a.links,
        feedback: a.feedbackText ?? null,
        decision: { ...decisionJson(e.decision), decidedAt: iso(e.decision.decidedAt) },
        delivery: {
          state: a.delivery.state,
          pages: a.delivery.pages.map((p) => ({
            target: p.target,
            state: p.state,
            attempts: p.attempt?.number ?? 0,
            lastAttemptAt: isoOrNull(p.attempt?.at),
            channel: p.attempt?.channel ?? null,
            lastError: p.attempt?.error ?? null,
            deliveredAt: isoOrNull(p.deliveredAt),
            nextAttemptAt: isoOrNull(p.nextAt),
          })),
        },
        clipped: a.clipped,
        href: a.href,
      };
    }),
  };
}

/** GET /v1/timeline?range&from&to&service&env: mounted in the /v1 router, behind its authentication. */
export function timelineApi(deps: UiDeps): RequestHandler {
  return async (req, res) => {
    const parsed = parseRange(req.query, deps.now(), { defaultRangeMs: deps.config.timeline.defaultRangeMs });
    if (!parsed.ok) throw new ApiError('invalid_query', undefined, { problems: parsed.problems });
    const t = await loadTimeline(deps, parsed.range);
    securityHeaders(res);
    // A weak validator of what is shown, not of `now`: a poll that finds nothing new costs a 304.
    res.set({ ETag: `W/"${t.revision}"`, 'Cache-Control': 'private, no-cache' });
    res.json(timelineJson(t, deps.config.timeline.maxItems));
  };
}

/** A same-origin path to go back to after signing in; anything else (//evil, https://evil) becomes "/". */
function safeNext(value: unknown): string {
  if (typeof value !== 'string' || value.length > 2048) return '/';
  return /^\/(?![/\\])[^\s\\]*$/.test(value) ? value : '/';
}

/**
 * Form posts must come from this origin: SameSite=Strict keeps the cookie off cross-site requests, but the
 * login form itself has no cookie yet (login CSRF), so check what the browser says about the origin. Browsers
 * send Sec-Fetch-Site, which a page cannot forge; Origin against Host (or the proxy's X-Forwarded-Host, since a
 * reverse proxy may rewrite Host) covers older ones; a client that sends neither is not a browser.
 */
function sameOrigin(req: Request): boolean {
  const site = req.get('sec-fetch-site');
  if (site !== undefined) return site === 'same-origin' || site === 'none';
  const origin = req.get('origin');
  if (origin === undefined) return true;
  try {
    const host = new URL(origin).host;
    return host === req.get('host') || host === req.get('x-forwarded-host')?.split(',')[0]?.trim();
  } catch {
    return false;
  }
}

function wantsSecure(config: Config, req: Request): boolean {
  if (config.session.cookieSecure !== 'auto') return config.session.cookieSecure === 'always';
  // Behind a TLS-terminating proxy the request reaches us over http. Trusting the header only to add Secure
  // is harmless: a forged "https" at worst keeps the cookie off plain http, which is what Secure is for.
  const forwarded = req.get('x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase();
  return req.secure || forwarded === 'https';
}

/** A browser navigating (its Accept names text/html); API clients and probes get the API's JSON errors. */
function wantsHtml(req: Request): boolean {
  return (req.get('accept') ?? '').includes('text/html');
}

function sendHtml(res: Response, status: number, body: Html): void {
  res.status(status).type('html').send(body.text);
}

/** The pages, the login and the static files; mounted on the app after /v1 and before the 404 handler. */
export function createUi(deps: UiDeps & { metrics: Metrics; logins: LoginLimiter }): express.Router {
  const { config, store, now, log, metrics, logins } = deps;
  const assets: Assets = loadAssets(deps.staticDir);
  const check = tokenCheck(config.tokens, store);
  const router = express.Router();

  // Open like the login form that needs them: they hold no data. One route per file, so a route listing
  // (test/security) names exactly what is served.
  for (const [name, asset] of assets.files) {
    router.get(`/ui/${name}`, (req, res) => {
      securityHeaders(res);
      // Versioned URLs (?v=digest) never change content: cache for a year. The bare URL revalidates.
      res.set('Cache-Control', req.query.v === asset.digest ? 'public, max-age=31536000, immutable' : 'no-cache');
      res.set('ETag', `"${asset.digest}"`);
      res.type(asset.type).send(asset.body);
    });
  }

  /**
   * The page's own authentication: the header or the cookie. Without either, 401: with the login form for a
   * browser, with the API's JSON error for anything else (curl, probes, scripts).
   */
  const pageAuth: RequestHandler = async (req, res, next) => {
    const caller = await callerOf(check, req, now());
    if (!caller) {
      res.set('WWW-Authenticate', 'Bearer realm="changepager"');
      if (!wantsHtml(req)) return next(new ApiError('unauthorized'));
      return sendHtml(res, 401, loginPage({ assets: assets.urls, next: safeNext(req.originalUrl) }));
    }
    res.locals.caller = caller;
    res.locals.tokenName = caller.name;
    next();
  };

  const render = async (req: Request, res: Response, service: string | undefined) => {
    const parsed = parseRange(req.query, now(), {
      defaultRangeMs: config.timeline.defaultRangeMs,
      ...(service === undefined ? {} : { service }),
    });
    if (!parsed.ok) {
      if (!wantsHtml(req)) throw new ApiError('invalid_query', undefined, { problems: parsed.problems });
      const heading = 'That time range cannot be shown';
      return sendHtml(res, 400, problemPage({ assets: assets.urls, heading, problems: parsed.problems, home: '/' }));
    }
    const range = parsed.range;
    const [timeline, names] = await Promise.all([loadTimeline(deps, range), store.serviceNames()]);
    const services = [...new Set([...names, ...Object.keys(config.services)])].sort();
    const page = timelinePage({
      timeline,
      services,
      assets: assets.urls,
      caller: res.locals.caller as Caller,
      refreshUrl: `/v1/timeline${rangeSearch(range)}`,
      refreshSeconds: REFRESH_SECONDS,
      defaultRangeMs: config.timeline.defaultRangeMs,
    });
    sendHtml(res, 200, page);
  };

  router.get('/', pageHeaders, pageAuth, async (req, res) => {
    // The form's service filter arrives as ?service=: the canonical address of one service is its own path.
    const service = typeof req.query.service === 'string' ? req.query.service.trim() : '';
    if (service === '') return render(req, res, undefined);
    // A service whose name a path cannot carry (only dots) is shown right here, at /?service=.
    if (!isPathSegment(service)) return render(req, res, service);
    const rest = new URLSearchParams();
    for (const [k, v] of Object.entries(req.query)) if (k !== 'service' && typeof v === 'string') rest.set(k, v);
    const search = rest.toString();
    return res.redirect(303, `/services/${encodeURIComponent(service)}${search ? `?${search}` : ''}`);
  });

  router.get('/services/:name', pageHeaders, pageAuth, async (req, res) => {
    await render(req, res, String(req.params.name));
  });

  router.get('/login', pageHeaders, (req, res) => {
    if (check.open) return res.redirect(303, safeNext(req.query.next));
    sendHtml(res, 200, loginPage({ assets: assets.urls, next: safeNext(req.query.next) }));
  });

  const form = express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 10 });

  router.post('/login', pageHeaders, form, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const next = safeNext(body.next);
    if (!sameOrigin(req)) throw new ApiError('forbidden', 'Sign in from this service’s own login form.');
    if (check.open) return res.redirect(303, next);
    const client = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const waitMs = logins.refusal(client, now());
    if (waitMs !== undefined) {
      // Refused before the token is even compared: a guessing script learns nothing more until the wait is over.
      metrics.logins.inc({ result: 'limited' });
      res.set('Retry-After', String(Math.ceil(waitMs / 1000)));
      if (!wantsHtml(req)) throw new ApiError('too_many_logins');
      const error = `Too many wrong tokens from your address: try again in ${humanGap(waitMs)}.`;
      return sendHtml(res, 429, loginPage({ assets: assets.urls, next, error }));
    }
    const who = check.token(typeof body.token === 'string' ? body.token : '');
    if (!who) {
      // No log line per guess (a script makes thousands a second): the limiter logs one line per burst.
      logins.failed(client, now());
      metrics.logins.inc({ result: 'wrong_token' });
      res.set('WWW-Authenticate', 'Bearer realm="changepager"');
      if (!wantsHtml(req)) throw new ApiError('unauthorized');
      return sendHtml(
        res,
        401,
        loginPage({ assets: assets.urls, next, error: 'That token is not one of the configured API tokens.' }),
      );
    }
    const secure = wantsSecure(config, req);
    const session = newSession(who.secret);
    const at = now();
    await store.createSession(
      { idHash: session.idHash, tokenName: who.name, createdAt: at, expiresAt: at + config.session.ttlMs },
      at,
    );
    metrics.logins.inc({ result: 'ok' });
    res.cookie(secure ? SECURE_SESSION_COOKIE : PLAIN_SESSION_COOKIE, session.value, {
      httpOnly: true,
      sameSite: 'strict',
      secure,
      path: '/',
      maxAge: config.session.ttlMs,
      // The value is already URL-safe; express would otherwise encode it again.
      encode: (v: string) => v,
    });
    log.info({ event: 'login', tokenName: who.name, role: who.role }, 'timeline login');
    res.redirect(303, next);
  });

  router.post('/logout', pageHeaders, async (req, res) => {
    if (!sameOrigin(req)) throw new ApiError('forbidden', 'Sign out from this service’s own page.');
    // Ended in the database, not just in this browser: a copy of the cookie is dead too.
    const session = readSession(cookieValue(req, SESSION_COOKIES));
    if (session) await store.deleteSession(session.idHash);
    for (const name of [SECURE_SESSION_COOKIE, PLAIN_SESSION_COOKIE]) {
      res.clearCookie(name, { path: '/', httpOnly: true, sameSite: 'strict', secure: name === SECURE_SESSION_COOKIE });
    }
    sendHtml(res, 200, loginPage({ assets: assets.urls, next: '/', notice: 'You are signed out.' }));
  });

  // Errors of the pages as a page, not as JSON: a person is reading.
  const pageErrors: ErrorRequestHandler = (err, req, res, next) => {
    if (res.headersSent || !wantsHtml(req)) return next(err);
    const api =
      err instanceof ApiError ? err : err instanceof StorageError ? new ApiError('storage_unavailable') : null;
    if (!api) return next(err); // the app's handler logs it and answers 500
    securityHeaders(res);
    sendHtml(
      res,
      api.status,
      problemPage({
        assets: assets.urls,
        heading: api.status >= 500 ? 'The timeline is unavailable right now' : 'That did not work',
        problems: [{ path: api.code, message: api.message }],
        home: '/',
      }),
    );
  };
  router.use(pageErrors);
  return router;
}
