// Bounding text that comes from alerts and deploy events before it goes to PagerDuty or Slack. A label value,
// an annotation or a commit message can be megabytes long; what a receiver refuses is never delivered, and what
// it accepts still has to be read by a person woken at night.

/** `text` cut to `max` characters plus a note of how much was cut: "…(12,345 more characters)". */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const kept = cutAt(text, max);
  return `${kept}… (${count(text.length - kept.length)} more characters)`;
}

/** `text` cut to at most `max` characters in all, an ellipsis included: for fields with a hard length limit. */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${cutAt(text, max - 1)}…`;
}

/** "… and 940 more changes": what a list shown in part leaves out. */
export function more(n: number, what: string): string {
  return `… and ${count(n)} more ${what}`;
}

/** 9980 → "9,980", whatever the locale of the machine. */
export function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** The first `max` UTF-16 units of `text`, one fewer when the cut would split a surrogate pair. */
function cutAt(text: string, max: number): string {
  const code = text.charCodeAt(max - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}
