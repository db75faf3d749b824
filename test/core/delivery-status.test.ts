import { describe, expect, it } from 'vitest';
import { alertDelivery, type PageAttempts, pageDelivery } from '../../src/core/delivery-status.js';

const oncall = { kind: 'oncall' } as const;
const alice = { kind: 'person', email: 'alice@example.com' } as const;
const at = Date.parse('2026-11-26T11:10:00Z');
const attempt = (outcome: 'delivered' | 'retry' | 'failed', n = 1, detail = 'HTTP 503 Service Unavailable') => ({
  outcome,
  detail,
  at,
  attempt: n,
  channel: 'pagerduty',
});

describe('the delivery state of one page', () => {
  it.each<[string, PageAttempts, string]>([
    ['no attempt yet, the row waits: queued', { target: oncall, waiting: { dueAt: at } }, 'queued'],
    ['delivered by its latest attempt', { target: oncall, latest: attempt('delivered'), deliveredAt: at }, 'delivered'],
    [
      'the latest attempt failed retryably: retrying',
      { target: oncall, latest: attempt('retry', 3), waiting: { dueAt: at + 4000 } },
      'retrying',
    ],
    [
      'the latest attempt failed for good: failed',
      { target: oncall, latest: attempt('failed', 2, 'HTTP 400') },
      'failed',
    ],
    [
      'delivered, and its resolve waits for a first try: queued',
      { target: oncall, latest: attempt('delivered'), deliveredAt: at, waiting: { dueAt: at } },
      'queued',
    ],
    [
      'failed for good, then queued again by a change: queued',
      { target: oncall, latest: attempt('failed'), waiting: { dueAt: at } },
      'queued',
    ],
    [
      'delivered, then its resolve failed retryably: retrying',
      { target: oncall, latest: attempt('retry', 1), deliveredAt: at - 60_000, waiting: { dueAt: at + 1000 } },
      'retrying',
    ],
  ])('%s', (_intent, page, state) => {
    expect(pageDelivery(page).state).toBe(state);
  });

  it('keeps the last error, the attempt number and the next try of a page being retried', () => {
    expect(pageDelivery({ target: alice, latest: attempt('retry', 3), waiting: { dueAt: at + 4000 } })).toEqual({
      target: alice,
      state: 'retrying',
      attempt: { at, channel: 'pagerduty', number: 3, error: 'HTTP 503 Service Unavailable' },
      nextAt: at + 4000,
    });
  });

  it('carries no error for a delivered page', () => {
    expect(
      pageDelivery({ target: alice, latest: attempt('delivered'), deliveredAt: at }).attempt?.error,
    ).toBeUndefined();
  });
});

describe('the delivery state of an alert: its worst page', () => {
  const delivered: PageAttempts = { target: alice, latest: attempt('delivered'), deliveredAt: at };
  const retrying: PageAttempts = { target: oncall, latest: attempt('retry'), waiting: { dueAt: at } };
  const failed: PageAttempts = { target: oncall, latest: attempt('failed') };
  const queued: PageAttempts = { target: oncall, waiting: { dueAt: at } };

  it.each<[string, PageAttempts[], string]>([
    ['on no page at all', [], 'none'],
    ['every page delivered', [delivered], 'delivered'],
    ['one page delivered, one retrying', [delivered, retrying], 'retrying'],
    ['one retrying, one failed for good', [retrying, failed], 'failed'],
    ['one delivered, one still queued', [delivered, queued], 'queued'],
  ])('%s', (_intent, pages, state) => {
    expect(alertDelivery(pages).state).toBe(state);
    expect(alertDelivery(pages).pages).toHaveLength(pages.length);
  });
});
