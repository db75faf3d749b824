import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LANES } from '../../src/channels/registry.js';
import { runVerdict } from '../../src/cli/verdict.js';
import { createDelivery } from '../../src/deliver/worker.js';
import { createLogger } from '../../src/log.js';
import { cliIo } from '../cli/support.js';
import { amPayload, createHarness, designDeploy, fakeClock, type Harness, TOKEN } from '../support/harness.js';
import { type PagerDutyStub, startPagerDutyStub } from '../support/pagerduty-stub.js';
import {
  type HangingServer,
  type Prometheus,
  prometheusInstalled,
  startHangingServer,
  startPrometheus,
  type Traffic,
  trafficOpenMetrics,
} from '../support/prometheus.js';
import { type SlackStub, startSlackStub } from '../support/slack-stub.js';

// Evidence in the decision path, through the whole service: a deploy event and an Alertmanager notification over
// HTTP, a real Prometheus (Debian's) holding the services' series, and the PagerDuty and Slack stand-ins
// recording who was paged and told what.

const installed = prometheusInstalled();
const MIN = 60_000;
const auth = { Authorization: `Bearer ${TOKEN}` };
const CA_FILE = fileURLToPath(new URL('../fixtures/tls/localhost.crt', import.meta.url));
const ROUTING_KEY = 'checkout-routing-key-000000000000';
/** Three hours before the current hour: the series are in the past, always at the same offsets. */
const EPOCH = Math.floor(Date.now() / (60 * MIN)) * 60 * MIN - 3 * 60 * MIN;
const iso = (minute: number) => new Date(EPOCH + minute * MIN).toISOString();

const healthy = { environment: 'production', rps: 20, errorRatio: 0.003, latency: 0.08 };
const TRAFFIC: Traffic[] = [
  // checkout: v2 replaced v1 everywhere and fails 8 % of its requests.
  { ...healthy, service: 'checkout', version: 'v1', instances: ['checkout-1', 'checkout-2'], from: -60, to: 0 },
  {
    ...healthy,
    service: 'checkout',
    version: 'v2',
    instances: ['checkout-1', 'checkout-2'],
    from: 0,
    to: 30,
    errorRatio: 0.08,
  },
  // search: v2 is exactly as good as v1: the alert comes from somewhere else.
  { ...healthy, service: 'search', version: 'v1', instances: ['search-1', 'search-2'], from: -60, to: 0 },
  { ...healthy, service: 'search', version: 'v2', instances: ['search-1', 'search-2'], from: 0, to: 30 },
  // cart: no version label; the canary host cart-2 fails 10 % from the deploy on.
  { ...healthy, service: 'cart', instances: ['cart-1', 'cart-3'], from: -60, to: 30, errorRatio: 0.005 },
  {
    ...healthy,
    service: 'cart',
    instances: ['cart-2'],
    from: -60,
    to: 30,
    errorRatio: [
      [-60, 0.005],
      [0, 0.1],
    ],
  },
  // ledger: a canary alerting one minute after its deploy: too few points to judge.
  { ...healthy, service: 'ledger', version: 'v1', instances: ['ledger-1', 'ledger-2'], from: -60, to: 30 },
  { ...healthy, service: 'ledger', version: 'v2', instances: ['ledger-3'], from: 0, to: 30 },
];

const BY_HOST = `
    comparisons:
      - name: error ratio
        query: '(sum(rate(http_requests_total{service="{service}", environment="{environment}", status=~"5..", pod=~"{hosts}", pod!~"{not_hosts}"}[2m])) or vector(0)) / sum(rate(http_requests_total{service="{service}", environment="{environment}", pod=~"{hosts}", pod!~"{not_hosts}"}[2m]))'
        bad: increase
        min_change: 0.5
        critical: true
        unit: ratio`;

function yaml(pd: PagerDutyStub, slack: SlackStub, prometheusUrl: string, budget = 'PT3S', mode = 'required') {
  return `
prometheus: { url: "${prometheusUrl}", budget: ${budget}, request_timeout: PT5S }
pagerduty:
  events_url: ${pd.url}
  api_url: ${pd.url}
  api_token_env: PD_TOKEN
  from: changepager@example.com
  ca_file: ${CA_FILE}
  request_timeout: PT1S
slack:
  bot_token_env: SLACK_BOT_TOKEN
  signing_secret_env: SLACK_SIGNING_SECRET
  api_url: ${slack.apiUrl}
  bot_id: BBOT
  bot_user_id: UBOT
  request_timeout: PT1S
defaults:
  policy: author
  evidence: ${mode}
  pagerduty: { service_id: PDEFAULT, routing_key_env: PD_KEY }
services:
  cart:${BY_HOST}
people:
  - email: alice@example.com
    logins: [alice]
    pagerduty_user_id: PALICE
    slack_user_id: UALICE
`;
}

interface Case {
  service: string;
  deployAt: number;
  alertAt: number;
  hosts?: string[];
  instance?: string;
  previousVersion?: string;
}

describe.skipIf(!installed)(
  `evidence before paging a person${installed ? '' : ' (skipped: prometheus not installed)'}`,
  () => {
    let dir: string;
    let prometheus: Prometheus;
    let pd: PagerDutyStub;
    let slack: SlackStub;
    let h: Harness | undefined;
    let clock: ReturnType<typeof fakeClock>;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'changepager-evidence-path-'));
      prometheus = await startPrometheus({ dir, openMetrics: trafficOpenMetrics(TRAFFIC, EPOCH) });
    }, 120_000);
    afterAll(async () => {
      await prometheus?.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    afterEach(async () => {
      await h?.close();
      h = undefined;
      await pd?.close();
      await slack?.close();
    });

    async function start(prometheusUrl = prometheus.url, budget = 'PT3S', mode = 'required') {
      clock = fakeClock(new Date().toISOString());
      pd = await startPagerDutyStub({ https: true });
      pd.users = [{ id: 'PALICE', email: 'alice@example.com', name: 'Alice' }];
      slack = await startSlackStub();
      h = createHarness({
        now: clock.now,
        yaml: yaml(pd, slack, prometheusUrl, budget, mode),
        env: { PD_TOKEN: 'pd-token', PD_KEY: ROUTING_KEY, SLACK_BOT_TOKEN: 'xoxb-t', SLACK_SIGNING_SECRET: 's' },
      });
      return h;
    }

    /** A deploy of `service` from v1 to v2 and an alert on it; answers once the notification is stored (2xx). */
    async function deployAndFire(c: Case) {
      const app = (h as Harness).app;
      const deploy = designDeploy({
        id: `deploy-${c.service}`,
        service: c.service,
        version: 'v2',
        previousVersion: c.previousVersion ?? 'v1',
        at: iso(c.deployAt),
        ...(c.hosts ? { hosts: c.hosts, stage: 'canary' } : {}),
      });
      expect((await request(app).post('/v1/deploys').set(auth).send(deploy)).status).toBe(201);
      const labels = { service: c.service, instance: c.instance ?? `${c.service}-1:8080` };
      const res = await request(app)
        .post('/v1/alertmanager')
        .set(auth)
        .send(amPayload([{ fingerprint: fingerprintOf(c.service), startsAt: iso(c.alertAt), labels }]));
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    }

    /** Delivers everything due, moving the clock to the next due row, until nothing is left. */
    async function settle() {
      const harness = h as Harness;
      for (let i = 0; i < 50; i++) {
        await harness.worker.drain();
        const next = await harness.store.nextDueAt();
        if (next === undefined) return;
        clock.set(new Date(Math.max(clock.now() + 1000, next)).toISOString());
      }
    }

    const decisionOf = async (service: string) =>
      (
        await request((h as Harness).app)
          .get(`/v1/alerts/${fingerprintOf(service)}`)
          .set(auth)
      ).body.episodes[0].decision;
    const incidentDetails = () => pd.incidentCreates().map((b) => b.incident?.body?.details ?? '');
    const oncallTriggers = () => pd.events({ accepted: true }).filter((e) => e.event_action === 'trigger');
    const dmText = () =>
      slack
        .callsTo('chat.postMessage')
        .filter((c) => c.args.channel === 'UALICE')
        .map((c) => JSON.stringify(c.args.blocks));

    it('new version worse: the author is paged, and the incident, the DM and the decision carry the numbers', async () => {
      await start();
      await deployAndFire({ service: 'checkout', deployAt: 0, alertAt: 7 });
      await settle();
      const decision = await decisionOf('checkout');
      expect(decision.reason).toBe('author_paged');
      expect(decision.evidence).toMatchObject({ verdict: 'worse', effect: 'convicted', late: false });
      expect(decision.sentence).toMatch(/error ratio \d+\.\d % on v2 vs 0\.3 % on v1 .*\(Mann-Whitney p < 0\.001\)/);
      expect(pd.incidentCreates()).toHaveLength(1);
      expect(pd.incidentCreates()[0]?.incident?.assignments?.[0]?.assignee?.id).toBe('PALICE');
      expect(incidentDetails()[0]).toMatch(/error ratio \d+\.\d % on v2 vs 0\.3 % on v1/);
      expect(oncallTriggers()).toHaveLength(0);
      expect(dmText()).toHaveLength(1);
      expect(dmText()[0]).toMatch(/The metrics agree: error ratio \d+\.\d % on v2/);
      const scraped = (await request((h as Harness).app).get('/metrics')).text;
      expect(scraped).toContain('changepager_evidence_total{verdict="worse",effect="convicted"} 1');
      // The timeline page's detail panel: the verdict, the numbers, and both series drawn with the deploy marked.
      const page = (
        await request((h as Harness).app)
          .get('/services/checkout?range=PT6H')
          .set(auth)
      ).text;
      expect(page).toContain('Evidence: <strong>worse</strong>');
      expect(page).toMatch(/<polyline class="evidence-new" [^>]*points="[\d., ]{20,}"/);
      expect(page).toMatch(/<polyline class="evidence-old" [^>]*points="[\d., ]{20,}"/);
      expect(page).toContain('stroke-dasharray');
      expect(page).toMatch(
        /error ratio: <span class="evidence-new-label">v2<\/span> vs <span class="evidence-old-label">v1<\/span>/,
      );
    });

    it('new version the same: deploy_exonerated, on-call paged as if there were no deploy, the author told', async () => {
      await start();
      await deployAndFire({ service: 'search', deployAt: 0, alertAt: 7 });
      await settle();
      const decision = await decisionOf('search');
      expect(decision.reason).toBe('deploy_exonerated');
      expect(decision.targets).toEqual([{ kind: 'oncall' }]);
      expect(decision.evidence).toMatchObject({ verdict: 'same', effect: 'exonerated' });
      expect(pd.incidentCreates()).toHaveLength(0);
      expect(oncallTriggers()).toHaveLength(1);
      expect(oncallTriggers()[0]?.routing_key).toBe(ROUTING_KEY);
      expect(JSON.stringify(oncallTriggers()[0]?.payload)).toContain('The metrics clear deploy-search');
      expect(dmText()).toHaveLength(1);
      expect(dmText()[0]).toContain('your change looks innocent');
      expect(dmText()[0]).toMatch(/error ratio 0\.\d+ % on v2 vs 0\.\d+ % on v1/);
      expect(dmText()[0]).not.toContain('changepager_not_mine');
      const scraped = (await request((h as Harness).app).get('/metrics')).text;
      expect(scraped).toContain('changepager_evidence_total{verdict="same",effect="exonerated"} 1');
    });

    it('advisory: the evidence is shown, and the author is paged as without it even when it clears the deploy', async () => {
      await start(prometheus.url, 'PT3S', 'advisory');
      await deployAndFire({ service: 'search', deployAt: 0, alertAt: 7 });
      await settle();
      const decision = await decisionOf('search');
      expect(decision.reason).toBe('author_paged');
      expect(decision.evidence).toMatchObject({ verdict: 'same', effect: 'advisory', mode: 'advisory' });
      expect(decision.sentence).toMatch(/Evidence \(advisory, same\): error ratio/);
      expect(pd.incidentCreates()).toHaveLength(1);
      expect(incidentDetails()[0]).toContain('Evidence (advisory, same)');
      expect(oncallTriggers()).toHaveLength(0);
    });

    it('a canary judged by its hosts: cart-2 against the other hosts, the author paged', async () => {
      await start();
      await deployAndFire({
        service: 'cart',
        deployAt: 0,
        alertAt: 7,
        hosts: ['cart-2'],
        instance: 'cart-2:8080',
      });
      await settle();
      const decision = await decisionOf('cart');
      expect(decision.evidence).toMatchObject({ verdict: 'worse', effect: 'convicted' });
      expect(decision.sentence).toMatch(/error ratio \d+\.\d % on cart-2 vs 0\.\d % on the other hosts/);
      expect(pd.incidentCreates()).toHaveLength(1);
    });

    it('too little data: no_data, the decision stands and says so', async () => {
      await start();
      await deployAndFire({ service: 'ledger', deployAt: 0, alertAt: 1, instance: 'ledger-3:8080' });
      await settle();
      const decision = await decisionOf('ledger');
      expect(decision.reason).toBe('author_paged');
      expect(decision.evidence).toMatchObject({ verdict: 'no_data', effect: 'stands' });
      expect(decision.sentence).toContain('too few points');
      expect(pd.incidentCreates()).toHaveLength(1);
    });

    it('Prometheus stopped: the decision of today, saying evidence was unavailable and why', async () => {
      const closed = await freePort();
      await start(`http://127.0.0.1:${closed}`);
      await deployAndFire({ service: 'checkout', deployAt: 0, alertAt: 7 });
      await settle();
      const decision = await decisionOf('checkout');
      expect(decision.reason).toBe('author_paged');
      expect(decision.evidence).toMatchObject({ verdict: 'unavailable', effect: 'stands' });
      expect(decision.sentence).toContain('Evidence unavailable, so the decision stands');
      expect(pd.incidentCreates()).toHaveLength(1);
    });

    it('Prometheus answering garbage: the decision of today, saying what came back', async () => {
      const garbage = createHttpServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"status":"success","data":"not a matrix"');
      });
      await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve));
      try {
        const address = garbage.address();
        await start(`http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`);
        await deployAndFire({ service: 'checkout', deployAt: 0, alertAt: 7 });
        await settle();
        const decision = await decisionOf('checkout');
        expect(decision.reason).toBe('author_paged');
        expect(decision.evidence).toMatchObject({ verdict: 'unavailable', effect: 'stands' });
        expect(decision.sentence).toContain('Evidence unavailable, so the decision stands');
        expect(decision.sentence).toContain("Prometheus' answer is not JSON (application/json)");
        expect(pd.incidentCreates()).toHaveLength(1);
      } finally {
        await new Promise<void>((resolve) => garbage.close(() => resolve()));
      }
    });

    describe('Prometheus hanging', () => {
      let hanging: HangingServer;
      beforeAll(async () => {
        hanging = await startHangingServer();
      });
      afterAll(async () => {
        await hanging.close();
      });

      it('pages the author within the budget, with the evidence unavailable', async () => {
        await start(hanging.url, 'PT1S');
        await deployAndFire({ service: 'checkout', deployAt: 0, alertAt: 7 });
        await settle();
        const decision = await decisionOf('checkout');
        expect(decision.reason).toBe('author_paged');
        expect(decision.evidence).toMatchObject({ verdict: 'unavailable' });
        expect(decision.sentence).toContain('no answer from Prometheus within');
        expect(pd.incidentCreates()).toHaveLength(1);
        expect(hanging.accepted()).toBeGreaterThan(0);
      });
    });

    it('late evidence: the page went out as today, the evidence is noted on the incident and the DM, nobody re-routed', async () => {
      const harness = await start();
      const receivedAt = clock.now();
      await deployAndFire({ service: 'search', deployAt: 0, alertAt: 7 });
      // The evidence lane is stuck (a backlog, a restart) past the budget: the page and DM go without it.
      const withoutEvidence = createDelivery(
        LANES.filter((l) => !l.kinds.includes('evidence')),
        {
          store: harness.store,
          handlers: harness.channels.handlers,
          log: createLogger('silent'),
          metrics: harness.metrics,
          now: clock.now,
          pollIntervalMs: 60_000,
          maxBackoffMs: 60_000,
          leaseMs: 30_000,
        },
      );
      clock.set(new Date(receivedAt + 3_000).toISOString());
      await withoutEvidence.drain();
      expect(pd.incidentCreates()).toHaveLength(1);
      expect(dmText()).toHaveLength(1);
      expect(dmText()[0]).not.toContain('error ratio');

      // Then the evidence lane gets to it: it clears the deploy, but the page is out, so it only informs.
      await settle();
      const decision = await decisionOf('search');
      expect(decision.reason).toBe('author_paged');
      expect(decision.evidence).toMatchObject({ verdict: 'same', effect: 'stands', late: true });
      expect(pd.incidentCreates()).toHaveLength(1);
      expect(oncallTriggers()).toHaveLength(0);
      const notes = pd.requestsTo('notes').map((r) => JSON.stringify(r.body));
      expect(notes).toHaveLength(1);
      expect(notes[0]).toMatch(
        /Evidence judged after this page went out.*error ratio 0\.\d+ % on v2 vs 0\.\d+ % on v1/,
      );
      const updates = slack.callsTo('chat.update').map((c) => JSON.stringify(c.args.blocks));
      expect(updates).toHaveLength(1);
      expect(updates[0]).toContain('arrived after the page went out');
    });

    it('POST /v1/preview asks Prometheus, says so, and shows what the evidence would change; nothing stored or paged', async () => {
      const harness = await start();
      for (const service of ['checkout', 'search']) {
        const deploy = designDeploy({
          id: `deploy-${service}`,
          service,
          version: 'v2',
          previousVersion: 'v1',
          at: iso(0),
        });
        await request(harness.app).post('/v1/deploys').set(auth).send(deploy);
      }
      const payload = amPayload([
        { fingerprint: fingerprintOf('checkout'), startsAt: iso(7), labels: { service: 'checkout' } },
        { fingerprint: fingerprintOf('search'), startsAt: iso(7), labels: { service: 'search' } },
      ]);
      const res = await request(harness.app).post('/v1/preview').set(auth).send(payload);
      expect(res.status).toBe(200);
      expect(res.body.prometheusQueries).toBe(2);
      const [checkout, search] = res.body.decisions;
      expect(checkout.decision.reason).toBe('author_paged');
      expect(checkout.evidence).toMatchObject({ verdict: 'worse', effect: 'convicted' });
      expect(checkout.decision.sentence).toMatch(/The metrics agree: error ratio \d+\.\d % on v2/);
      expect(search.decision.reason).toBe('deploy_exonerated');
      expect(search.decision.targets).toEqual([{ kind: 'oncall' }]);
      await settle();
      expect(pd.incidentCreates()).toHaveLength(0);
      expect(oncallTriggers()).toHaveLength(0);
      expect(
        (
          await request(harness.app)
            .get(`/v1/alerts/${fingerprintOf('checkout')}`)
            .set(auth)
        ).status,
      ).toBe(404);
    });

    it('GET /v1/precision: per service, pages to a person, "not my change", confirmed, cleared, disagreements', async () => {
      const harness = await start();
      await deployAndFire({ service: 'checkout', deployAt: 0, alertAt: 7 });
      await deployAndFire({ service: 'search', deployAt: 0, alertAt: 7 });
      await settle();
      // The author of checkout's change says it is not theirs, though its metrics are worse.
      const episode = (await harness.store.alertHistory(fingerprintOf('checkout')))[0]?.episode.id as number;
      expect(await harness.store.recordNotMine(episode, 'alice@example.com', clock.now())).toEqual({ recorded: true });
      const res = await request(harness.app).get('/v1/precision?since=P1D').set(auth);
      expect(res.status).toBe(200);
      expect(res.body.services).toEqual([
        {
          service: 'checkout',
          pagedPerson: 1,
          notMyChange: 1,
          evidenceJudged: 1,
          confirmed: 1,
          exonerated: 0,
          disagreements: 1,
          precision: 0,
        },
        {
          service: 'search',
          pagedPerson: 0,
          notMyChange: 0,
          evidenceJudged: 1,
          confirmed: 0,
          exonerated: 1,
          disagreements: 0,
          precision: null,
        },
      ]);
      // The same numbers on the timeline page, for the alerts it shows.
      const page = (await request(harness.app).get('/?range=PT6H').set(auth)).text;
      expect(page).toMatch(
        /<tr data-precision="checkout">\s*<td data-label="Service">checkout<\/td>\s*<td data-label="Paged a person">1<\/td>\s*<td data-label="Not my change">1<\/td>\s*<td data-label="Precision">0 %<\/td>\s*<td data-label="Evidence judged">1<\/td>\s*<td data-label="Confirmed">1<\/td>\s*<td data-label="Cleared \(on-call paged\)">0<\/td>\s*<td data-label="Evidence and person disagree">1<\/td>/,
      );
      expect(page).toMatch(/<tr data-precision="search">[\s\S]*?<td data-label="Cleared \(on-call paged\)">1<\/td>/);
    });

    describe('the canary gate', () => {
      const post = (deploy: object) =>
        request((h as Harness).app)
          .post('/v1/deploys')
          .set(auth)
          .send(deploy);
      const verdictOf = async (id: string) =>
        (
          await request((h as Harness).app)
            .get(`/v1/deploys/${id}/verdict?observe=PT30M`)
            .set(auth)
        ).body;

      it('fails a rollout whose metrics are worse before any alert fires, with the numbers', async () => {
        await start();
        await post(
          designDeploy({
            id: 'rollout-checkout',
            service: 'checkout',
            version: 'v2',
            previousVersion: 'v1',
            at: iso(0),
          }),
        );
        const v = await verdictOf('rollout-checkout');
        expect(v.verdict).toBe('failing');
        expect(v.alerts).toEqual([]);
        expect(v.sentence).toMatch(
          /failing on its metrics.*The metrics are worse: error ratio \d+\.\d % on v2 vs 0\.3 % on v1/,
        );
        expect(v.evidence).toMatchObject({
          verdict: 'worse',
          metrics: [{ name: 'error ratio', class: 'worse' }, { name: 'p95 latency' }],
        });
      });

      it('calls a rollout healthy once the window passed with metrics no worse; the CLI prints the numbers', async () => {
        const harness = await start();
        await post(
          designDeploy({ id: 'rollout-search', service: 'search', version: 'v2', previousVersion: 'v1', at: iso(0) }),
        );
        const v = await verdictOf('rollout-search');
        expect(v.verdict).toBe('healthy');
        expect(v.sentence).toMatch(/is healthy: no alert .* The metrics are no worse: error ratio/);

        const server = harness.app.listen(0, '127.0.0.1');
        await new Promise((resolve) => server.once('listening', resolve));
        try {
          const address = server.address();
          const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
          const run = cliIo({ env: { CHANGEPAGER_URL: url, CHANGEPAGER_TOKEN: TOKEN } });
          expect(await runVerdict(['rollout-search'], run.io)).toBe(0);
          expect(run.stdout).toMatch(/^healthy: .*The metrics are no worse: error ratio/);
          expect(run.stdout).toMatch(/\n {2}\* same: error ratio \d+\.\d+ % on v2 vs/);
        } finally {
          await new Promise<void>((resolve) => server.close(() => resolve()));
        }
      });

      it('keeps a rollout pending after its window while its metrics cannot be judged (too little data), saying why', async () => {
        await start();
        // The deploy names a previous version Prometheus has no series of: nothing to compare with.
        await post(
          designDeploy({ id: 'rollout-ledger', service: 'ledger', version: 'v2', previousVersion: 'v0', at: iso(0) }),
        );
        const v = await verdictOf('rollout-ledger');
        expect(v.verdict).toBe('pending');
        expect(v.window.decidedInSeconds).toBe(0);
        expect(v.evidence?.verdict).toBe('no_data');
        expect(v.sentence).toMatch(/Not healthy until the metrics can be judged \(no_data\).*too few points/);
      });
    });

    it('the evidence never judged (a crash after the 2xx): the page goes at receipt + budget all the same', async () => {
      const harness = await start();
      const receivedAt = clock.now();
      await deployAndFire({ service: 'search', deployAt: 0, alertAt: 7 });
      // Every lane but evidence: as if the process died before the evidence row was taken.
      const withoutEvidence = createDelivery(
        LANES.filter((l) => !l.kinds.includes('evidence')),
        {
          store: harness.store,
          handlers: harness.channels.handlers,
          log: createLogger('silent'),
          metrics: harness.metrics,
          now: clock.now,
          pollIntervalMs: 60_000,
          maxBackoffMs: 60_000,
          leaseMs: 30_000,
        },
      );
      await withoutEvidence.drain();
      expect(pd.incidentCreates()).toHaveLength(0);
      expect(await harness.store.nextDueAt(['page'])).toBe(receivedAt + 3_000);
      clock.set(new Date(receivedAt + 3_000).toISOString());
      await withoutEvidence.drain();
      expect(pd.incidentCreates()).toHaveLength(1);
      expect(pd.incidentCreates()[0]?.incident?.assignments?.[0]?.assignee?.id).toBe('PALICE');
      expect((await decisionOf('search')).evidence).toBeNull();
    });
  },
);

/** An alert fingerprint (16 hex digits, as Alertmanager sends them) per service. */
function fingerprintOf(service: string): string {
  return Buffer.from(service).toString('hex').padEnd(16, '0').slice(0, 16);
}

/** A port nothing listens on: taken from the system, then released. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('evidence across a restart', () => {
  it('pages at receipt + budget after a restart that dropped the prometheus section, and retires the evidence row', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'changepager-evidence-restart-'));
    const clock = fakeClock('2026-11-26T11:10:00Z');
    const people = 'people: [{ email: alice@example.com, logins: [alice] }]\ndefaults: { policy: author }\n';
    const first = createHarness({
      dir,
      now: clock.now,
      yaml: `${people}prometheus: { url: "http://127.0.0.1:9" }\n`,
    });
    try {
      await request(first.app)
        .post('/v1/deploys')
        .set(auth)
        .send(designDeploy({ at: '2026-11-26T11:02:00Z' }));
      const res = await request(first.app)
        .post('/v1/alertmanager')
        .set(auth)
        .send(amPayload([{ fingerprint: 'e0e0e0e0e0e0e0e0', startsAt: '2026-11-26T11:09:00Z' }]));
      expect(res.status).toBe(200);
      expect(res.body.decisions[0].decision.reason).toBe('author_paged');
    } finally {
      // The process stops after the 2xx, before any delivery.
      await first.close();
    }
    const second = createHarness({ dir, now: clock.now, yaml: people });
    try {
      await second.worker.drain();
      const before = (await request(second.app).get('/v1/alerts/e0e0e0e0e0e0e0e0').set(auth)).body.episodes[0];
      expect(before.deliveries).toEqual([]);
      clock.advance(3_000);
      await second.worker.drain();
      const after = (await request(second.app).get('/v1/alerts/e0e0e0e0e0e0e0e0').set(auth)).body.episodes[0];
      expect(after.pages.map((p: { target: unknown }) => p.target)).toEqual([
        { kind: 'person', email: 'alice@example.com' },
      ]);
      expect(after.deliveries).toMatchObject([{ outcome: 'delivered' }]);
      expect(after.decision.evidence).toBeNull();
      expect(await second.store.nextDueAt()).toBeUndefined();
    } finally {
      await second.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
