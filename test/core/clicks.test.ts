import { describe, expect, it } from 'vitest';
import { type ClickFacts, mayAcknowledge, mayDisown } from '../../src/core/clicks.js';

const named = ['alice@example.com', 'bob@example.com'];
const facts = (f: Partial<ClickFacts>): ClickFacts => ({ clicker: 'UALICE', recipient: 'UALICE', named, ...f });

describe('mayAcknowledge', () => {
  it.each([
    { intent: 'the recipient of a posted DM may', f: facts({}), want: { ok: true } },
    {
      intent: 'someone else may not, even someone the decision named',
      f: facts({ clicker: 'UBOB', clickerEmail: 'bob@example.com' }),
      want: { ok: false, refusal: 'not_recipient' },
    },
    {
      intent: 'nobody may before the DM is posted, not even the person it is for',
      f: facts({ recipient: undefined }),
      want: { ok: false, refusal: 'not_posted' },
    },
  ])('$intent', ({ f, want }) => {
    expect(mayAcknowledge(f)).toEqual(want);
  });
});

describe('mayDisown', () => {
  it.each([
    { intent: 'the recipient may', f: facts({}), want: { ok: true } },
    {
      intent: 'another person the decision named may (the merger, say)',
      f: facts({ clicker: 'UBOB', clickerEmail: 'Bob@Example.com' }),
      want: { ok: true },
    },
    {
      intent: 'a named person may before the DM is posted',
      f: facts({ clicker: 'UBOB', clickerEmail: 'bob@example.com', recipient: undefined }),
      want: { ok: true },
    },
    {
      intent: 'a person the decision did not name may not',
      f: facts({ clicker: 'UCAROL', clickerEmail: 'carol@example.com' }),
      want: { ok: false, refusal: 'not_named' },
    },
    {
      intent: 'a clicker whose email cannot be found may not, unless they are the recipient',
      f: facts({ clicker: 'UCAROL' }),
      want: { ok: false, refusal: 'unknown_clicker' },
    },
  ])('$intent', ({ f, want }) => {
    expect(mayDisown(f)).toEqual(want);
  });
});
