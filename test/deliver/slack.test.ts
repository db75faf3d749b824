import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { amPayload, createHarness, designDeploy, fakeClock, type Harness, TOKEN } from '../support/harness.js';
import { type PagerDutyStub, startPagerDutyStub } from '../support/pagerduty-stub.js';
import { type SlackCall, type SlackStub, startSlackStub } from '../support/slack-stub.js';

const auth = { Authorization: `Bearer ${TOKEN}` };
const CA_FILE = fileURLToPath(new URL('../fixtures/tls/localhost.crt', import.meta.url));
const SIGNING_SECRET = 'slack-signing-secret-for-tests';
const BOT_TOKEN = 'xoxb-test-bot-token';
const ROUTING_KEY = 'checkout-routing-key-000000000000';

// Slack verifies request timestamps against the real clock (Bolt reads Date.now()), so these tests run on a
// clock that starts at the real time and is moved forward from there.
const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();

function config(pdUrl: string, slackUrl: string, policy = 'author') {
  return `
pagerduty:
  events_url: ${pdUrl}
  api_url: ${pdUrl}
  api_token_env: PD_TOKEN
  from: changepager@example.com
  ca_file: ${CA_FILE}
  request_timeout: PT1S
slack:
  bot_token_env: SLACK_BOT_TOKEN
  signing_secret_env: SLACK_SIGNING_SECRET
  api_url: ${slackUrl}
  bot_id: BBOT
  bot_user_id: UBOT
  request_timeout: PT1S
defaults:
  policy: ${policy}
  pagerduty: { service_id: PDEFAULT, routing_key_env: PD_KEY }
services:
  checkout:
    compare_url: "https://grafana.example.com/d/checkout?var-old={old}&var-new={new}&from={from}&to={to}"
people:
  - email: alice@example.com
    logins: [alice]
    pagerduty_user_id: PALICE
    slack_user_id: UALICE
`;
}

describe('Slack DMs', () => {
  let pd: PagerDutyStub;
  let slack: SlackStub;
  let h: Harness;
  let clock: ReturnType<typeof fakeClock>;
  let firedAt: string;

  const start = (policy = 'author', extraYaml = '') => {
    h = createHarness({
      now: clock.now,
      yaml: config(pd.url, slack.apiUrl, policy) + extraYaml,
      env: {
        PD_TOKEN: 'pd-token',
        PD_KEY: ROUTING_KEY,
        SLACK_BOT_TOKEN: BOT_TOKEN,
        SLACK_SIGNING_SECRET: SIGNING_SECRET,
      },
    });
  };
  const post = (path: string, body: unknown) =>
    request(h.app)
      .post(path)
      .set(auth)
      .send(body as object);
  const deployAndFire = async (fingerprint = 'a100000000000001', labels: Record<string, string> = {}) => {
    await post('/v1/deploys', designDeploy({ at: minutesAgo(10) }));
    await post('/v1/alertmanager', amPayload([{ fingerprint, startsAt: firedAt, labels }]));
  };
  const settle = async () => {
    for (let i = 0; i < 50; i++) {
      await h.worker.drain();
      const next = await h.store.nextDueAt();
      if (next === undefined) return;
      clock.set(new Date(Math.max(clock.now() + 1000, next)).toISOString());
    }
  };
  const blocksText = (call: SlackCall | undefined) => JSON.stringify(call?.args.blocks ?? []);
  const dmsTo = (user: string) => slack.callsTo('chat.postMessage').filter((c) => c.args.channel === user);

  /** A block_actions request as Slack sends it, signed with the app's signing secret. */
  function click(
    actionId: string,
    posted: SlackCall | undefined,
    opts: { user?: string; value?: string; secret?: string; ageSeconds?: number } = {},
  ) {
    const value =
      opts.value ??
      (posted?.args.blocks as { elements?: { value?: string }[] }[] | undefined)?.find((b) => b.elements)?.elements?.[0]
        ?.value;
    const payload = {
      type: 'block_actions',
      user: { id: opts.user ?? 'UALICE', username: 'alice', team_id: 'T1' },
      api_app_id: 'A1',
      token: 'legacy',
      container: { type: 'message', message_ts: '1.0', channel_id: 'DALICE', is_ephemeral: false },
      trigger_id: '1.2.3',
      team: { id: 'T1', domain: 'example' },
      channel: { id: 'DALICE', name: 'directmessage' },
      message: { type: 'message', ts: '1.0', text: 'x' },
      response_url: 'https://hooks.slack.invalid/actions/1',
      actions: [
        {
          type: 'button',
          action_id: actionId,
          block_id: 'dm:1',
          value,
          action_ts: '1.0',
          text: { type: 'plain_text', text: 'x' },
        },
      ],
    };
    const body = `payload=${encodeURIComponent(JSON.stringify(payload))}`;
    const ts = Math.floor(Date.now() / 1000) - (opts.ageSeconds ?? 0);
    const sig = `v0=${createHmac('sha256', opts.secret ?? SIGNING_SECRET)
      .update(`v0:${ts}:${body}`)
      .digest('hex')}`;
    return request(h.app)
      .post('/slack/events')
      .type('form')
      .set('X-Slack-Request-Timestamp', String(ts))
      .set('X-Slack-Signature', sig)
      .send(body);
  }

  beforeEach(async () => {
    clock = fakeClock(new Date().toISOString());
    firedAt = minutesAgo(3);
    pd = await startPagerDutyStub({ https: true });
    pd.users = [
      { id: 'PALICE', email: 'alice@example.com', name: 'Alice' },
      { id: 'PBOB', email: 'bob@example.com', name: 'Bob' },
    ];
    slack = await startSlackStub();
    slack.users = [
      { id: 'UBOB', email: 'bob@example.com' },
      { id: 'UCAROL', email: 'carol@example.com' },
    ];
    start();
  });
  afterEach(async () => {
    await h.close();
    await pd.close();
    await slack.close();
  });

  it('DMs alice with the PR link, the filled compare link and the reason, and bob as the merger', async () => {
    await deployAndFire();
    await settle();
    const [dm] = dmsTo('UALICE');
    expect(dm?.authorization).toBe(`Bearer ${BOT_TOKEN}`);
    const blocks = blocksText(dm);
    expect(blocks).toContain('https://git.example.com/shop/pull/4812');
    expect(blocks).toContain(
      'https://grafana.example.com/d/checkout?var-old=2026.11.25-77b0e12&var-new=2026.11.26-3f2a9c1&from=',
    );
    expect(blocks).toContain('GO HERE');
    expect(blocks).toContain('Paging alice@example.com');
    expect(blocks).toContain('7 min after your change: deploy 2026.11.26-3f2a9c1 (full)');
    expect(blocks).toContain('You were paged in PagerDuty');
    expect(String(dm?.args.text)).toMatch(/^HighErrorRate is firing on checkout after deploy 2026.11.26-3f2a9c1/);
    expect(JSON.stringify(dm?.args.blocks)).toContain('"action_id":"changepager_not_mine"');
    const [bobDm] = dmsTo('UBOB');
    expect(blocksText(bobDm)).toContain('You merged this change');
    expect(slack.callsTo('users.lookupByEmail').map((c) => c.args.email)).toEqual(['bob@example.com']);
  });

  it('pages on-call through the Events API, records the feedback and says so, on a signed "Not my change" click', async () => {
    await deployAndFire();
    await settle();
    const res = await click('changepager_not_mine', dmsTo('UALICE')[0]);
    expect(res.status).toBe(200);
    await slack.waitFor((calls) => calls.some((c) => c.method === 'chat.update'));
    await settle();
    const triggers = pd.events({ accepted: true }).filter((e) => e.event_action === 'trigger');
    expect(triggers).toHaveLength(1);
    expect(triggers[0]?.routing_key).toBe(ROUTING_KEY);
    const decision = (await request(h.app).get('/v1/alerts/a100000000000001').set(auth)).body.episodes[0].decision;
    expect(decision.feedback).toMatchObject({ kind: 'not_my_change', by: 'alice@example.com' });
    const update = slack.callsTo('chat.update')[0];
    expect(blocksText(update)).toContain('said this is not their change');
    expect(blocksText(update)).not.toContain('changepager_not_mine');

    // A second click is harmless: no second page, a polite note.
    await click('changepager_not_mine', dmsTo('UALICE')[0]);
    await slack.waitFor((calls) => calls.some((c) => c.method === 'chat.postEphemeral'));
    await settle();
    expect(pd.events({ accepted: true }).filter((e) => e.event_action === 'trigger')).toHaveLength(1);
    expect(slack.callsTo('chat.postEphemeral')[0]?.args.text).toMatch(/^Already noted/);
  });

  it('counts "not my change" per service, a service neither configured nor among the busiest as "other"', async () => {
    await h.close();
    start('author', 'metrics: { top_services: 0 }\n');
    await post('/v1/deploys', designDeploy({ at: minutesAgo(10) }));
    await post('/v1/deploys', designDeploy({ id: 'cart-1', service: 'cart', at: minutesAgo(10) }));
    await post('/v1/alertmanager', amPayload([{ fingerprint: 'a100000000000011', startsAt: firedAt }]));
    await post(
      '/v1/alertmanager',
      amPayload([{ fingerprint: 'a100000000000012', startsAt: firedAt, labels: { service: 'cart' } }]),
    );
    await settle();
    const dms = dmsTo('UALICE');
    expect(dms).toHaveLength(2);
    for (const dm of dms) expect((await click('changepager_not_mine', dm)).status).toBe(200);
    await slack.waitFor((calls) => calls.filter((c) => c.method === 'chat.update').length >= 2);
    const metrics = (await request(h.app).get('/metrics')).text;
    expect(metrics).toContain('changepager_feedback_total{kind="not_my_change",service="checkout"} 1');
    expect(metrics).toContain('changepager_feedback_total{kind="not_my_change",service="other"} 1');
    expect(metrics).not.toContain('service="cart"');
  });

  it("acknowledges alice's incident in PagerDuty on her behalf", async () => {
    await deployAndFire();
    await settle();
    await click('changepager_ack', dmsTo('UALICE')[0]);
    await pd.waitFor((reqs) => reqs.some((r) => r.route === 'incidents.update'));
    const [update] = pd.incidentUpdates();
    expect(update?.from).toBe('alice@example.com');
    expect(update?.body.incident).toEqual({ type: 'incident_reference', status: 'acknowledged' });
    await slack.waitFor((calls) => calls.some((c) => c.method === 'chat.update'));
    expect(blocksText(slack.callsTo('chat.update')[0])).toContain('Acknowledged by <@UALICE>');
  });

  it('records an Acknowledge on a DM whose page went to the log, and asks PagerDuty nothing', async () => {
    await h.close();
    const withoutPagerDuty = config(pd.url, slack.apiUrl)
      .replace(/^pagerduty:\n(?: {2}.*\n)*/m, '')
      .replace(/^ {2}pagerduty: .*\n/m, '');
    h = createHarness({
      now: clock.now,
      yaml: withoutPagerDuty,
      env: { SLACK_BOT_TOKEN: BOT_TOKEN, SLACK_SIGNING_SECRET: SIGNING_SECRET },
    });
    await deployAndFire();
    await settle();
    expect((await click('changepager_ack', dmsTo('UALICE')[0])).status).toBe(200);
    await slack.waitFor((calls) => calls.some((c) => c.method === 'chat.update'));
    expect(blocksText(slack.callsTo('chat.update')[0])).toContain('Acknowledged by <@UALICE>');
    expect(pd.requests).toEqual([]);
    expect(h.logs.map((l) => JSON.parse(l))).toContainEqual(
      expect.objectContaining({
        msg: 'acknowledged from Slack',
        detail: 'pages go to the log: acknowledgement recorded only',
      }),
    );
  });

  describe('who may click', () => {
    const ephemerals = () => slack.callsTo('chat.postEphemeral');
    const decisionOf = async () =>
      (await request(h.app).get('/v1/alerts/a100000000000001').set(auth)).body.episodes[0].decision;

    it("refuses bob's Acknowledge on alice's DM: a polite note to bob, and nothing acknowledged", async () => {
      await deployAndFire();
      await settle();
      await click('changepager_ack', dmsTo('UALICE')[0], { user: 'UBOB' });
      await slack.waitFor((calls) => calls.some((c) => c.method === 'chat.postEphemeral'));
      expect(ephemerals()).toEqual([
        expect.objectContaining({
          args: expect.objectContaining({
            user: 'UBOB',
            text: 'Only the person this message was sent to can acknowledge from it. Nothing was done.',
          }),
        }),
      ]);
      await settle();
      expect(pd.incidentUpdates()).toEqual([]);
      expect(slack.callsTo('chat.update')).toEqual([]);

      await click('changepager_ack', dmsTo('UALICE')[0]); // alice herself still can
      await pd.waitFor((reqs) => reqs.some((r) => r.route === 'incidents.update'));
      expect(pd.incidentUpdates()[0]?.from).toBe('alice@example.com');
    });

    it('refuses an Acknowledge on a DM that has not been posted yet, even from its recipient', async () => {
      slack.fail({ status: 500 }); // the DMs cannot be posted; the page is delivered all the same
      await deployAndFire();
      await h.worker.drain();
      expect(pd.incidentCreates()).toHaveLength(1);
      const dm = await h.store.dmWithContext(1, 0);
      expect(dm?.dm).toMatchObject({ email: 'alice@example.com', delivered: {} });
      slack.clearFaults();
      await click('changepager_ack', undefined, { value: '1' });
      await slack.waitFor((calls) => calls.some((c) => c.method === 'chat.postEphemeral'));
      expect(ephemerals()[0]?.args.text).toMatch(/^changepager has not finished sending this message/);
      expect(pd.incidentUpdates()).toEqual([]);
      expect((await h.store.dmWithContext(1, 0))?.dm.delivered.acked_by).toBeUndefined();
    });

    it('refuses "Not my change" from someone the decision did not name, and pages nobody', async () => {
      await deployAndFire();
      await settle();
      await click('changepager_not_mine', dmsTo('UALICE')[0], { user: 'UCAROL' });
      await slack.waitFor((calls) => calls.some((c) => c.method === 'chat.postEphemeral'));
      expect(ephemerals()[0]?.args).toMatchObject({
        user: 'UCAROL',
        text: 'Only a person changepager named for this alert can say it is not their change. Nothing was done.',
      });
      await settle();
      expect(pd.events({ accepted: true }).filter((e) => e.event_action === 'trigger')).toEqual([]);
      expect((await decisionOf()).feedback).toBeNull();
    });

    it('takes "Not my change" from the merger the decision named, on the author\'s DM', async () => {
      await deployAndFire();
      await settle();
      await click('changepager_not_mine', dmsTo('UALICE')[0], { user: 'UBOB' });
      await slack.waitFor((calls) => calls.some((c) => c.method === 'chat.update'));
      await settle();
      expect(pd.events({ accepted: true }).filter((e) => e.event_action === 'trigger')).toHaveLength(1);
      expect((await decisionOf()).feedback).toMatchObject({ kind: 'not_my_change', by: 'bob@example.com' });
    });
  });

  it('updates the DM when the alert resolves, and removes the buttons', async () => {
    await deployAndFire();
    await settle();
    await post(
      '/v1/alertmanager',
      amPayload([{ fingerprint: 'a100000000000001', startsAt: firedAt, status: 'resolved', endsAt: minutesAgo(1) }]),
    );
    await settle();
    const updates = slack.callsTo('chat.update').filter((u) => u.args.channel === 'DALICE');
    expect(updates).toHaveLength(1);
    expect(blocksText(updates[0])).toContain('Resolved: *HighErrorRate* on *checkout*');
    expect(blocksText(updates[0])).not.toContain('"type":"actions"');
  });

  it('updates the DMs, and sends no new one, when the alert resolves under another startsAt', async () => {
    await deployAndFire();
    await settle();
    const rounded = new Date(Math.floor(Date.parse(firedAt) / 1000) * 1000 - 1000).toISOString();
    await post(
      '/v1/alertmanager',
      amPayload([{ fingerprint: 'a100000000000001', startsAt: rounded, status: 'resolved', endsAt: minutesAgo(1) }]),
    );
    await settle();
    expect(slack.callsTo('chat.postMessage').map((c) => c.args.channel)).toEqual(['UALICE', 'UBOB']);
    const updates = slack.callsTo('chat.update');
    expect(updates.map((u) => u.args.channel).sort()).toEqual(['DALICE', 'DBOB']);
    expect(blocksText(updates[0])).toContain('Resolved: *HighErrorRate* on *checkout*');
    expect(pd.incidents().map((i) => i.status)).toEqual(['resolved']);
  });

  it('threads a second alert from the same deploy under the first DM', async () => {
    await deployAndFire('a100000000000002');
    await settle();
    await post(
      '/v1/alertmanager',
      amPayload(
        [{ fingerprint: 'a100000000000003', startsAt: minutesAgo(2), labels: { alertname: 'HighLatency' } }],
        '{}:{alertname="HighLatency"}',
      ),
    );
    await settle();
    const posts = slack
      .callsTo('chat.postMessage')
      .filter((c) => c.args.channel === 'UALICE' || c.args.channel === 'DALICE');
    expect(posts).toHaveLength(2);
    expect(posts[0]?.args.thread_ts).toBeUndefined();
    expect(posts[1]?.args.channel).toBe('DALICE');
    expect(posts[1]?.args.thread_ts).toMatch(/^\d+\.\d+$/);
  });

  it('escapes alert text, so a label cannot mention @channel or hide a link', async () => {
    await post('/v1/deploys', designDeploy({ at: minutesAgo(10) }));
    const payload = amPayload([
      {
        fingerprint: 'a100000000000004',
        startsAt: minutesAgo(3),
        labels: { alertname: '<!channel> wake up', severity: '<https://evil.example|docs>' },
      },
    ]);
    (payload.alerts[0] as { annotations: Record<string, string> }).annotations.summary =
      'See <https://evil.example|the docs> & <@UBOSS>';
    await post('/v1/alertmanager', payload);
    await settle();
    const dm = dmsTo('UALICE')[0];
    const all = `${blocksText(dm)} ${dm?.args.text}`;
    expect(all).not.toContain('<!channel>');
    expect(all).not.toContain('<https://evil.example|');
    expect(all).not.toContain('<@UBOSS>');
    expect(all).toContain('&lt;!channel&gt; wake up');
    expect(all).toContain('See &lt;https://evil.example|the docs&gt; &amp; &lt;@UBOSS&gt;');
  });

  it('tells every author of a bundled deploy that on-call was paged', async () => {
    await post(
      '/v1/deploys',
      designDeploy({
        at: minutesAgo(10),
        changes: [{ author: { email: 'alice@example.com' } }, { author: { email: 'carol@example.com' } }],
      }),
    );
    await post('/v1/alertmanager', amPayload([{ fingerprint: 'a100000000000005', startsAt: minutesAgo(3) }]));
    await settle();
    for (const user of ['UALICE', 'UCAROL']) {
      const text = blocksText(dmsTo(user)[0]);
      expect(text).toContain('On-call was paged.');
      expect(text).toContain('bundled several changes');
      expect(text).not.toContain('changepager_not_mine');
    }
    expect(pd.incidentCreates()).toEqual([]);
  });

  describe('a bundle of many changes', () => {
    const authors = (n: number) => Array.from({ length: n }, (_, i) => ({ author: { email: `dev${i}@example.com` } }));
    const sections = (call: SlackCall | undefined) =>
      ((call?.args.blocks ?? []) as { type: string; text?: { text: string } }[]).flatMap((b) =>
        b.type === 'section' && b.text ? [b.text.text] : [],
      );

    it('DMs at most 20 of its 1,000 authors, and says how many more there are', async () => {
      slack.users.push(...Array.from({ length: 1000 }, (_, i) => ({ id: `UDEV${i}`, email: `dev${i}@example.com` })));
      await post('/v1/deploys', designDeploy({ at: minutesAgo(10), changes: authors(1000) }));
      await post('/v1/alertmanager', amPayload([{ fingerprint: 'a100000000000007', startsAt: minutesAgo(3) }]));
      await settle();

      const posts = slack.callsTo('chat.postMessage');
      expect(posts.map((c) => c.args.channel).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `UDEV${i}`).sort());
      for (const dm of posts) {
        expect(blocksText(dm)).toContain('dev19@example.com, … and 980 more');
        for (const text of sections(dm)) expect(text.length).toBeLessThanOrEqual(3000);
      }
      const decision = (await request(h.app).get('/v1/alerts/a100000000000007').set(auth)).body.episodes[0].decision;
      expect(decision.notify).toHaveLength(20);
      expect(decision.suspects).toHaveLength(20);
      expect(decision.sentence).toMatch(/bundled 1,000 changes \(dev0@example\.com, .*, … and 980 more\)/);
      expect(await h.store.nextDueAt(['dm'])).toBeUndefined();
    });

    it("posts an unrelated author's DM before most of a 20-DM bundle queued ahead of it", async () => {
      slack.users.push(...Array.from({ length: 20 }, (_, i) => ({ id: `UDEV${i}`, email: `dev${i}@example.com` })));
      await post('/v1/deploys', designDeploy({ at: minutesAgo(10), changes: authors(20) }));
      await post('/v1/alertmanager', amPayload([{ fingerprint: 'a100000000000009', startsAt: minutesAgo(3) }]));
      await post(
        '/v1/deploys',
        designDeploy({
          id: 'search-1',
          service: 'search',
          at: minutesAgo(10),
          changes: [{ author: { email: 'carol@example.com' } }],
        }),
      );
      await post(
        '/v1/alertmanager',
        amPayload([{ fingerprint: 'a10000000000000a', startsAt: minutesAgo(3), labels: { service: 'search' } }], 'g2'),
      );

      h.worker.start(); // the real lanes: four DMs in flight at a time
      await slack.waitFor((calls) => calls.filter((c) => c.method === 'chat.postMessage').length === 21);
      const order = slack.callsTo('chat.postMessage').map((c) => c.args.channel);
      expect(order.indexOf('UCAROL')).toBeLessThan(4);
    });
  });

  it('keeps a DM within what Slack accepts whatever the alert carries, and says what was cut', async () => {
    await post('/v1/deploys', designDeploy({ at: minutesAgo(10) }));
    const payload = amPayload([
      {
        fingerprint: 'a100000000000008',
        startsAt: minutesAgo(3),
        labels: { alertname: `Huge${'A'.repeat(100_000)}`, severity: 'x'.repeat(1_000_000) },
      },
    ]);
    (payload.alerts[0] as { annotations: Record<string, string> }).annotations = {
      summary: `Disk full ${'s'.repeat(1_000_000)}`,
      runbook_url: `https://runbooks.example/${'r'.repeat(2_000_000)}`,
    };
    expect((await post('/v1/alertmanager', payload)).status).toBe(200);
    await settle();

    const dm = dmsTo('UALICE')[0];
    const blocks = dm?.args.blocks as { type: string; text?: { text: string } }[];
    expect(blocks.length).toBeLessThanOrEqual(50);
    for (const b of blocks) if (b.text) expect(b.text.text.length).toBeLessThanOrEqual(3000);
    expect(String(dm?.args.text).length).toBeLessThanOrEqual(40_000);
    expect(blocksText(dm)).toContain('more characters)');
    expect(blocksText(dm)).not.toContain('https://runbooks.example/rrrr');
    expect(slack.callsTo('chat.postMessage').filter((c) => c.args.channel === 'UALICE')).toHaveLength(1);
  });

  it('DMs the author in shadow mode too, saying whom it would have paged', async () => {
    await h.close();
    start('shadow');
    await deployAndFire();
    await settle();
    expect(blocksText(dmsTo('UALICE')[0])).toContain('it would have paged you');
    // She was not paged: her DM must not let her acknowledge (silence) on-call's page.
    expect(blocksText(dmsTo('UALICE')[0])).not.toContain('changepager_ack');
    expect(pd.incidentCreates()).toEqual([]);
  });

  describe('requests to /slack/events', () => {
    it.each([
      ['a wrong signature', { secret: 'not-the-secret' }],
      ['a timestamp 6 minutes old', { ageSeconds: 6 * 60 }],
      ['a timestamp 10 minutes in the future', { ageSeconds: -10 * 60 }],
    ])('answers 401 to %s and does nothing', async (_intent, opts) => {
      await deployAndFire();
      await settle();
      const res = await click('changepager_not_mine', dmsTo('UALICE')[0], opts);
      expect(res.status).toBe(401);
      await settle();
      expect(pd.events()).toEqual([]);
    });

    it('answers an unknown button politely', async () => {
      const res = await click('some_old_button', undefined, { value: '1' });
      expect(res.status).toBe(200);
      await slack.waitFor((calls) => calls.some((c) => c.method === 'chat.postEphemeral'));
      expect(slack.callsTo('chat.postEphemeral')[0]?.args.text).toMatch(/does not know this button/);
    });

    it('answers a click on a resolved alert politely, and pages nobody', async () => {
      await deployAndFire();
      await settle();
      await post(
        '/v1/alertmanager',
        amPayload([{ fingerprint: 'a100000000000001', startsAt: firedAt, status: 'resolved', endsAt: minutesAgo(1) }]),
      );
      await settle();
      await click('changepager_not_mine', dmsTo('UALICE')[0]);
      await slack.waitFor((calls) => calls.some((c) => c.method === 'chat.postEphemeral'));
      expect(slack.callsTo('chat.postEphemeral')[0]?.args.text).toMatch(/already resolved/);
      expect(pd.events()).toEqual([]);
    });
  });

  describe('when Slack fails', () => {
    it('still pages in PagerDuty on time with Slack answering 500 to everything', async () => {
      slack.fail({ status: 500 });
      await deployAndFire();
      await h.worker.drain(); // one pass: the page goes out in it, whatever Slack does
      expect(pd.incidentCreates()).toHaveLength(1);
      const history = (await request(h.app).get('/v1/alerts/a100000000000001').set(auth)).body.episodes[0];
      expect(history.pages[0].delivered.incident).toBeDefined();
      expect(dmsTo('UALICE')).toHaveLength(1); // tried, failed, will be retried
      slack.clearFaults();
      await settle();
      expect(dmsTo('UALICE')).toHaveLength(2); // the failed try, then the DM
      expect(dmsTo('UBOB')).toHaveLength(1);
      expect(pd.incidentCreates()).toHaveLength(1);
    });

    it("waits as long as a 429's Retry-After says", async () => {
      slack.fail({ status: 429, headers: { 'retry-after': '30' }, times: 1 });
      await deployAndFire();
      const t0 = clock.now();
      await h.worker.drain();
      const next = await h.store.nextDueAt(['dm']);
      expect(next).toBeGreaterThanOrEqual(t0 + 30_000);
    });

    it('records a person with no Slack user, and gives up on that DM only', async () => {
      await post(
        '/v1/deploys',
        designDeploy({ at: minutesAgo(10), changes: [{ author: { email: 'dave@example.com' } }] }),
      );
      await post('/v1/alertmanager', amPayload([{ fingerprint: 'a100000000000006', startsAt: minutesAgo(3) }]));
      await settle();
      const unmapped = (await request(h.app).get('/v1/people/unmapped').set(auth)).body.people;
      expect(unmapped).toContainEqual(expect.objectContaining({ who: 'dave@example.com', reason: 'no_slack_user' }));
      expect(await h.store.nextDueAt(['dm'])).toBeUndefined();
    });
  });
});
