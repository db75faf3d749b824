import { describe, expect, it } from 'vitest';
import { logDmStatePatch, readLogDmState } from '../../src/channels/log/state.js';
import { type PageState, pageStatePatch, readPageState } from '../../src/channels/pagerduty/state.js';
import { type DmState, dmStatePatch, readDmState } from '../../src/channels/slack/state.js';

// Each channel's state of a page or a DM, read from the JSON record the store keeps for it: what this version
// writes, what older versions wrote, and what nobody should have written (a hand-edited database).

describe("PagerDuty's state of a page", () => {
  it.each<[string, Record<string, unknown>, PageState]>([
    ['a page never attempted', {}, { members: 0, attempted: false }],
    [
      "a person's incident, as written since incidents were created",
      {
        via: 'incident',
        incident: 'PINC1',
        state: 'triggered',
        members: '3',
        user: 'PALICE',
        url: 'https://acme.pagerduty.com/incidents/PINC1',
        responders: 'requested PBOB',
      },
      {
        via: 'incident',
        incident: 'PINC1',
        state: 'triggered',
        members: 3,
        user: 'PALICE',
        url: 'https://acme.pagerduty.com/incidents/PINC1',
        responders: 'requested PBOB',
        attempted: false,
      },
    ],
    [
      'an on-call page in its minimal form, resolved',
      { via: 'events', state: 'resolved', members: '1', form: 'minimal' },
      { via: 'events', state: 'resolved', members: 1, form: 'minimal', attempted: false },
    ],
    [
      "a person's page that fell back to on-call",
      { via: 'events', fallback: 'no PagerDuty user has the email dave@example.com', attempted: 'true' },
      { via: 'events', fallback: 'no PagerDuty user has the email dave@example.com', members: 0, attempted: true },
    ],
    [
      'a create that timed out, before anything else was recorded',
      { attempted: 'true' },
      { members: 0, attempted: true },
    ],
    ['an attempt flag cleared by an empty string', { attempted: '' }, { members: 0, attempted: false }],
    [
      "the log's record, from before PagerDuty was configured: not PagerDuty's",
      { log: 'trigger' },
      { members: 0, attempted: false },
    ],
    [
      'values it cannot read count as absent',
      { via: 'sms', state: 'acknowledged', members: 'three', form: 'tiny', incident: '', attempted: 'yes' },
      { members: 0, attempted: false },
    ],
    [
      'numbers and booleans where strings belong (a hand-edited record)',
      { members: 2, attempted: true, incident: 7 },
      { members: 2, attempted: true },
    ],
  ])('%s', (_intent, stored, expected) => {
    expect(readPageState(stored)).toEqual(expected);
  });

  it('writes back what it reads, as strings', () => {
    const state: PageState = {
      via: 'incident',
      incident: 'PINC1',
      state: 'triggered',
      members: 2,
      attempted: true,
      url: 'https://acme.pagerduty.com/incidents/PINC1',
    };
    const stored = pageStatePatch(state);
    expect(Object.values(stored).every((v) => typeof v === 'string')).toBe(true);
    expect(readPageState(stored)).toEqual(state);
    expect(pageStatePatch({ members: 4 })).toEqual({ members: '4' });
  });
});

describe("Slack's state of a DM", () => {
  it.each<[string, Record<string, unknown>, DmState]>([
    ['a DM not posted yet', {}, {}],
    [
      'a DM posted in a thread, acknowledged',
      {
        channel: 'DALICE',
        ts: '1700000000.000100',
        state: 'firing',
        user: 'UALICE',
        thread_ts: '1700000000.000001',
        acked_by: 'UALICE',
        acked_at: '1795692000000',
      },
      {
        channel: 'DALICE',
        ts: '1700000000.000100',
        shows: 'firing',
        user: 'UALICE',
        threadTs: '1700000000.000001',
        ackedBy: 'UALICE',
        ackedAt: 1795692000000,
      },
    ],
    [
      'a DM that can never be sent',
      { failed: 'no Slack user has the email dave@example.com' },
      { failed: 'no Slack user has the email dave@example.com' },
    ],
    [
      'a DM the log wrote before Slack was configured: it shows the status, and was never posted',
      { state: 'firing' },
      { shows: 'firing' },
    ],
    ['values it cannot read count as absent', { state: 'acked', acked_at: 'noon', ts: '' }, {}],
  ])('%s', (_intent, stored, expected) => {
    expect(readDmState(stored)).toEqual(expected);
  });

  it('writes back what it reads, under the keys older versions wrote', () => {
    const state: DmState = { channel: 'D1', ts: '1.2', shows: 'resolved', threadTs: '1.1', ackedBy: 'U1', ackedAt: 5 };
    expect(dmStatePatch(state)).toEqual({
      channel: 'D1',
      ts: '1.2',
      state: 'resolved',
      thread_ts: '1.1',
      acked_by: 'U1',
      acked_at: '5',
    });
    expect(readDmState(dmStatePatch(state))).toEqual(state);
  });
});

describe("the log's state of a DM", () => {
  it('reads the status it logged, and ignores what Slack recorded', () => {
    expect(readLogDmState(logDmStatePatch({ shows: 'resolved' }))).toEqual({ shows: 'resolved' });
    expect(readLogDmState({ channel: 'D1', ts: '1.2' })).toEqual({});
  });
});
