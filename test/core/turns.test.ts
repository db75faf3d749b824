import { describe, expect, it } from 'vitest';
import { type DueRow, inTurns } from '../../src/core/turns.js';

// Rows are written as "kind id dueAt turnKey"; the result is the ids in claiming order.
const row = (spec: string): DueRow => {
  const [kind = '', id = '0', dueAt = '0', turnKey] = spec.split(' ');
  return { kind, id: Number(id), dueAt: Number(dueAt), ...(turnKey === undefined ? {} : { turnKey }) };
};

describe('inTurns', () => {
  it.each([
    {
      intent: 'pages go before change events, even younger ones',
      rows: ['change 1 10', 'page 2 20 search'],
      want: [2, 1],
    },
    {
      intent: 'a storm of pages in one service does not hold up another service’s page',
      rows: ['page 1 10 search', 'page 2 11 search', 'page 3 12 search', 'page 4 13 checkout'],
      want: [1, 4, 2, 3],
    },
    {
      intent: 'within a turn, the oldest due first; equal times by id',
      rows: ['page 5 30 b', 'page 4 20 a', 'page 3 20 c', 'page 1 40 a'],
      want: [3, 4, 5, 1],
    },
    {
      intent: 'one alert’s many DMs take turns with another alert’s',
      rows: ['dm 1 10 7', 'dm 2 10 7', 'dm 3 10 7', 'dm 4 11 8', 'dm 5 12 8'],
      want: [1, 4, 2, 5, 3],
    },
    {
      intent: 'a page and a DM with the same key do not share turns',
      rows: ['dm 1 10 x', 'dm 2 11 x', 'page 3 12 x', 'page 4 13 x'],
      want: [3, 4, 1, 2],
    },
    {
      intent: 'rows without a turn key are each a first turn, ahead of second DMs',
      rows: ['dm 1 10 7', 'dm 2 11 7', 'evidence 3 12', 'evidence 4 13'],
      want: [1, 3, 4, 2],
    },
    { intent: 'nothing due, nothing to claim', rows: [], want: [] },
  ])('$intent', ({ rows, want }) => {
    expect(inTurns(rows.map(row)).map((r) => r.id)).toEqual(want);
  });

  it('leaves the rows it was given as they were', () => {
    const rows = ['page 1 10 a', 'page 2 11 a', 'page 3 12 b'].map(row);
    const before = rows.map((r) => r.id);
    inTurns(rows);
    expect(rows.map((r) => r.id)).toEqual(before);
  });
});
