import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { amPayload, apiClient, createHarness, designDeploy, fakeClock, type Harness } from '../support/harness.js';
import { type PagerDutyStub, startPagerDutyStub } from '../support/pagerduty-stub.js';
import { type SlackCall, type SlackStub, startSlackStub } from '../support/slack-stub.js';

// A rollback, end to end through PagerDuty and Slack stand-ins: alice deploys checkout v2 (previous v1) at 09:03
// and the team rolls back to v1 at 09:13. An alert that started at 09:05 is hers (an incident, a DM) and learns
// of the rollback; one that started at 09:20 goes to on-call, and alice is told, not paged.

const CA_FILE = fileURLToPath(new URL('../fixtures/tls/localhost.crt', import.meta.url));
const ROUTING_KEY = 'checkout-routing-key-000000000000';

function yaml(pdUrl: string, slackUrl: string) {
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
  policy: author
  include_merger: false
  pagerduty: { service_id: PDEFAULT, routing_key_env: PD_KEY }
people:
  - email: alice@example.com
    logins: [alice]
    pagerduty_user_id: PALICE
    slack_user_id: UALICE
`;
}

describe('rollbacks through PagerDuty and Slack', () => {
  let pd: PagerDutyStub;
  let slack: SlackStub;
  let h: Harness;
  const clock = fakeClock('2026-11-26T09:06:00Z');
  const { post } = apiClient(() => h.app);

  const settle = async () => {
    for (let i = 0; i < 50; i++) {
      await h.worker.drain();
      const next = await h.store.nextDueAt();
      if (next === undefined) return;
      clock.set(new Date(Math.max(clock.now() + 1000, next)).toISOString());
    }
  };
  const text = (call: SlackCall | undefined) => JSON.stringify(call?.args.blocks ?? []);
  const fire = (fingerprint: string, startsAt: string, extra: { status?: 'resolved'; endsAt?: string } = {}) =>
    post('/v1/alertmanager', amPayload([{ fingerprint, startsAt, ...extra }]));
  const incidents = () => pd.incidentCreates();
  const oncallTriggers = () => pd.events({ accepted: true }).filter((e) => e.event_action === 'trigger');

  beforeEach(async () => {
    clock.set('2026-11-26T09:06:00Z');
    pd = await startPagerDutyStub({ https: true });
    pd.users = [{ id: 'PALICE', email: 'alice@example.com', name: 'Alice' }];
    slack = await startSlackStub();
    h = createHarness({
      now: clock.now,
      yaml: yaml(pd.url, slack.apiUrl),
      env: { PD_TOKEN: 'pd-token', PD_KEY: ROUTING_KEY, SLACK_BOT_TOKEN: 'xoxb-t', SLACK_SIGNING_SECRET: 's' },
    });
    await post('/v1/deploys', designDeploy({ id: 'v1', version: 'v1', at: '2026-11-26T08:00:00Z' }));
    await post(
      '/v1/deploys',
      designDeploy({ id: 'v2', version: 'v2', previousVersion: 'v1', at: '2026-11-26T09:03:00Z' }),
    );
  });
  afterEach(async () => {
    await h.close();
    await pd.close();
    await slack.close();
  });

  const rollBack = async () => {
    clock.set('2026-11-26T09:13:30Z');
    const { changes: _c, ...event } = designDeploy({
      id: 'rb-1',
      version: 'v1',
      rollback: true,
      at: '2026-11-26T09:13:00Z',
    });
    expect((await post('/v1/deploys', event)).status).toBe(201);
  };

  it('an alert that started after the rollback pages on-call with after_rollback, and alice is told, not paged', async () => {
    await rollBack();
    clock.set('2026-11-26T09:21:00Z');
    const res = await fire('b000000000000001', '2026-11-26T09:20:00Z');
    expect(res.body.decisions[0].decision).toMatchObject({ reason: 'after_rollback', targets: [{ kind: 'oncall' }] });
    await settle();

    expect(incidents()).toEqual([]);
    const triggers = oncallTriggers();
    expect(triggers).toHaveLength(1);
    expect(triggers[0]?.routing_key).toBe(ROUTING_KEY);
    expect(JSON.stringify(triggers[0]?.payload)).toContain('checkout was rolled back to v1 at 09:13 UTC');
    const [dm] = slack.callsTo('chat.postMessage');
    expect(dm?.args.channel).toBe('UALICE');
    expect(text(dm)).toContain('On-call was paged.* Your change had been rolled back before this alert started');
  });

  it('an alert that straddles the rollback stays with alice; the incident gets a note and the DM an update', async () => {
    await fire('a000000000000001', '2026-11-26T09:05:00Z');
    await settle();
    expect(incidents()).toHaveLength(1);
    expect(slack.callsTo('chat.postMessage')).toHaveLength(1);

    await rollBack();
    await settle();
    const notes = pd.requestsTo('notes');
    expect(notes).toHaveLength(1);
    expect(JSON.stringify(notes[0]?.body)).toContain(
      'Rolled back to v1 at 09:13 UTC by deploy rb-1: deploy v2, which this incident is about, no longer runs.',
    );
    const updates = slack.callsTo('chat.update');
    expect(updates).toHaveLength(1);
    expect(text(updates[0])).toContain('*Rolled back* to v1 at 09:13 UTC by deploy rb-1: your change no longer runs.');
    expect(incidents()).toHaveLength(1);
    expect(oncallTriggers()).toEqual([]);

    // Resolving after the rollback: the DM says so, so alice learns her change still caused it.
    clock.set('2026-11-26T09:16:00Z');
    await fire('a000000000000001', '2026-11-26T09:05:00Z', { status: 'resolved', endsAt: '2026-11-26T09:15:00Z' });
    await settle();
    const resolved = slack.callsTo('chat.update').at(-1);
    expect(slack.callsTo('chat.update')).toHaveLength(2);
    expect(text(resolved)).toContain('The alert resolved at 09:15 UTC, after the rollback');
    expect(pd.incidentUpdates().map((u) => u.body.incident?.status)).toEqual(['resolved']);
    expect(pd.requestsTo('notes')).toHaveLength(1);
  });

  it('deploy, alert, rollback, second alert: alice paged once, on-call for the second, alice told of both', async () => {
    await fire('a000000000000001', '2026-11-26T09:05:00Z');
    await settle();
    await rollBack();
    await settle();
    clock.set('2026-11-26T09:21:00Z');
    await post(
      '/v1/alertmanager',
      amPayload([
        { fingerprint: 'a000000000000001', startsAt: '2026-11-26T09:05:00Z' },
        { fingerprint: 'b000000000000002', startsAt: '2026-11-26T09:20:00Z', labels: { instance: 'b:1' } },
      ]),
    );
    await settle();
    expect(incidents()).toHaveLength(1);
    expect(oncallTriggers()).toHaveLength(1);
    const posted = slack.callsTo('chat.postMessage');
    expect(posted).toHaveLength(2);
    expect(text(posted[0])).toContain('You were paged in PagerDuty');
    expect(text(posted[1])).toContain('Your change had been rolled back before this alert started');
  });
});
