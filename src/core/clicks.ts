// Who may press the buttons of a DM (deliver/slack/actions.ts). Slack signs every click, but a signed click only
// proves that someone in the workspace pressed a button with this value, not that the DM was theirs. Pure.

/** Why a click does nothing. */
export type ClickRefusal = 'not_posted' | 'not_recipient' | 'not_named' | 'unknown_clicker';

export interface ClickFacts {
  /** The Slack user who clicked. */
  clicker: string;
  /** The clicker's email, when it could be found (the people section, else Slack's profile). */
  clickerEmail?: string;
  /** The Slack user the DM was posted to; absent until it has been posted. */
  recipient?: string;
  /** Emails of the people the decision named: the suspects and the people it told. */
  named: readonly string[];
}

export type ClickVerdict = { ok: true } | { ok: false; refusal: ClickRefusal };

/** Acknowledge silences a page: only the person the DM was posted to may, and only once it has been posted. */
export function mayAcknowledge(f: ClickFacts): ClickVerdict {
  if (f.recipient === undefined) return { ok: false, refusal: 'not_posted' };
  if (f.clicker !== f.recipient) return { ok: false, refusal: 'not_recipient' };
  return { ok: true };
}

/** "Not my change" pages on-call: any person the decision named may say so, and nobody else. */
export function mayDisown(f: ClickFacts): ClickVerdict {
  // The DM went to someone the decision named, so its recipient is named.
  if (f.recipient !== undefined && f.clicker === f.recipient) return { ok: true };
  if (f.clickerEmail === undefined) return { ok: false, refusal: 'unknown_clicker' };
  const email = f.clickerEmail.toLowerCase();
  return f.named.some((n) => n.toLowerCase() === email) ? { ok: true } : { ok: false, refusal: 'not_named' };
}
