import { describe, expect, it } from 'vitest';
import { fitMrkdwn } from '../../src/channels/slack/messages.js';

// Slack refuses a section over 3,000 characters; a cut must not leave half a link or half an escape behind,
// which would show as broken markup or let the text after it be read as a link.

describe('fitMrkdwn', () => {
  it.each<[string, string, number, string]>([
    ['text within the limit is kept whole', 'abc', 3, 'abc'],
    ['plain text is cut and ends in an ellipsis', 'abcdefghij', 5, 'abcd…'],
    ['a cut inside a link drops the whole link', 'see <https://x.example/a|the docs> now', 20, 'see …'],
    [
      'a link that fits before the cut is kept',
      '<https://x.example|x> and more text here',
      25,
      '<https://x.example|x> an…',
    ],
    ['a cut inside an escape drops the escape', 'a &amp;&amp; b', 7, 'a …'],
    ['an escape that fits before the cut is kept', 'a &amp;&amp; b', 9, 'a &amp;…'],
  ])('%s', (_intent, text, max, fitted) => {
    expect(fitMrkdwn(text, max)).toBe(fitted);
    expect(fitMrkdwn(text, max).length).toBeLessThanOrEqual(max);
  });
});
