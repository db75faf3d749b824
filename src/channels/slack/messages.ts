import type { types } from '@slack/bolt';
import { describeChange } from '../../core/change.js';
import { clip, truncate } from '../../core/clip.js';
import { clockUtc, humanGap } from '../../core/time.js';
import type { Deploy } from '../../core/types.js';
import type { DmContext } from '../../store/store.js';
import { readDmState } from './state.js';

// Pure builders of the DM: Block Kit blocks plus the plain-text fallback Slack shows in notifications.
// Everything that comes from an alert or a deploy event is escaped (https://api.slack.com/reference/surfaces/formatting#escaping):
// a label such as "<!channel>" or "<https://evil|docs>" must show as text, never mention anyone or hide a link.

export const ACTIONS = {
  ack: 'changepager_ack',
  notMine: 'changepager_not_mine',
  open: 'changepager_open_pd',
} as const;

export interface DmView extends DmContext {
  deploy?: Deploy;
  /** The filled compare link ("GO HERE"), when the service has a template. */
  compareUrl?: string;
  /** Where the page can be opened (its PagerDuty incident), when it has such a place. */
  pageUrl?: string;
}

export interface SlackMessage {
  text: string;
  blocks: types.KnownBlock[];
}

/** Slack's three control characters; the rest of mrkdwn (*, _, ~, `) is formatting, harmless in a mention sense. */
export function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

// Slack refuses a section whose text is over 3,000 characters. Each value shown is clipped well below that,
// saying how much was cut, and each section is fitted last without cutting through a link or an escape.
const SECTION_MAX = 3000;
/** The notification text: Slack takes 40,000 characters, a notification shows a line or two. */
const FALLBACK_MAX = 2000;
const NAME_MAX = 200;
const SUMMARY_MAX = 1000;
const LABEL_MAX = 200;
const SENTENCE_MAX = 1500;
/** A longer URL is left out rather than cut: half a URL leads nowhere. */
const URL_MAX = 2000;

/** A link only for http(s) URLs; the URL cannot break out of the <url|text> syntax. */
export function link(url: string | undefined, text: string): string | undefined {
  if (!url || url.length > URL_MAX || !/^https?:\/\//i.test(url)) return undefined;
  const safe = url.replace(/[<>|\s]/g, (c) => encodeURIComponent(c));
  return `<${safe}|${escapeText(text)}>`;
}

const LABELS_SHOWN = ['severity', 'instance', 'pod', 'host', 'env', 'environment', 'namespace', 'job'];

/** Mrkdwn `text` cut to `max` characters, never inside a <link> or an &escape;. */
export function fitMrkdwn(text: string, max = SECTION_MAX): string {
  if (text.length <= max) return text;
  let cut = truncate(text, max).slice(0, -1);
  const open = cut.lastIndexOf('<');
  if (open > cut.lastIndexOf('>')) cut = cut.slice(0, open);
  return `${cut.replace(/&[a-z]*$/, '')}…`;
}

export function dmMessage(view: DmView): SlackMessage {
  const { episode: e, dm } = view;
  const d = e.decision;
  const alertname = clip(e.labels.alertname ?? 'An alert', NAME_MAX);
  const service = clip(d.service ?? 'an unnamed service', NAME_MAX);
  const sentence = clip(d.sentence, SENTENCE_MAX);
  const resolved = e.status === 'resolved';
  const role = d.suspects.find((s) => s.email === dm.email)?.role ?? 'author';
  const deploy = view.deploy;
  const what = deploy ? deployPhrase(deploy, e.startsAtMs, role) : '';

  const headline = resolved
    ? `:white_check_mark: Resolved: *${escapeText(alertname)}* on *${escapeText(service)}*${e.endsAtMs ? ` at ${clockUtc(e.endsAtMs)}` : ''}`
    : `:rotating_light: *${escapeText(alertname)}* is firing on *${escapeText(service)}*${what}`;
  const section = (text: string): types.KnownBlock => ({
    type: 'section',
    text: { type: 'mrkdwn', text: fitMrkdwn(text) },
  });
  const blocks: types.KnownBlock[] = [section(headline)];

  const summary = e.annotations.summary ?? e.annotations.description;
  const labels = LABELS_SHOWN.filter((l) => e.labels[l]).map(
    (l) => `${l}=${escapeText(clip(e.labels[l] as string, LABEL_MAX))}`,
  );
  const facts = [
    summary ? `> ${escapeText(clip(summary, SUMMARY_MAX))}` : undefined,
    labels.length > 0 ? `Labels: ${labels.join('  ')}` : undefined,
    `Started ${clockUtc(e.startsAtMs)}.`,
  ].filter(Boolean);
  blocks.push(section(facts.join('\n')));
  blocks.push(section(`*Why you:* ${escapeText(sentence)}\n${whatHappened(view, role)}`));
  const rollback = rollbackLine(view);
  if (rollback) blocks.push(section(rollback));

  const links = linkLine(view);
  if (links) blocks.push(section(links));

  const status = statusLine(view);
  if (status) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: fitMrkdwn(status) }] });

  if (!resolved) {
    const actions = buttons(view);
    if (actions.length > 0) blocks.push({ type: 'actions', block_id: `dm:${dm.id}`, elements: actions });
  }
  const text = resolved
    ? `Resolved: ${alertname} on ${service}`
    : `${alertname} is firing on ${service}${deploy ? ` after ${clip(describeChange(deploy), NAME_MAX)}` : ''}: ${sentence}`;
  return { text: fitMrkdwn(escapeText(text), FALLBACK_MAX), blocks };
}

function deployPhrase(deploy: Deploy, startsAtMs: number, role: 'author' | 'merger'): string {
  const gap = humanGap(startsAtMs - deploy.at);
  const whose = role === 'merger' ? 'a change you merged' : 'your change';
  return `, ${gap} after ${whose}: ${escapeText(clip(describeChange(deploy), NAME_MAX))} (${escapeText(deploy.stage)})`;
}

/**
 * The rollback of the deploy this DM is about, once there is one: while the alert fires, and after it resolved
 * (an alert that ends with the rollback still followed the change, and the author should know before shipping
 * it again).
 */
function rollbackLine(view: DmView): string | undefined {
  const r = view.rolledBack;
  const e = view.episode;
  if (!r || e.decision.reason === 'after_rollback') return undefined;
  const back = `:leftwards_arrow_with_hook: *Rolled back* to ${escapeText(clip(r.version, NAME_MAX))} at ${clockUtc(r.at)} by deploy ${escapeText(clip(r.rollbackId, NAME_MAX))}`;
  if (e.status === 'resolved' && e.endsAtMs !== undefined && e.endsAtMs >= r.at) {
    return `${back}. The alert resolved at ${clockUtc(e.endsAtMs)}, after the rollback: it started while your change ran, so it most likely came from it.`;
  }
  if (e.status === 'resolved') return `${back}, after the alert had resolved.`;
  return `${back}: your change no longer runs.`;
}

function whatHappened(view: DmView, role: 'author' | 'merger'): string {
  const d = view.episode.decision;
  const paged = view.pages.some((p) => p.target.kind === 'person' && p.target.email === view.dm.email);
  switch (d.reason) {
    case 'ambiguous_bundle':
      return `*On-call was paged.* That deploy bundled several changes, yours among them, so changepager could not tell whose change this is. One change per deploy lets it page the right person.`;
    case 'shadow':
      return `*On-call was paged.* changepager runs in shadow mode for this service: it would have paged ${d.wouldPage.some((t) => t.kind === 'person' && t.email === view.dm.email) ? 'you' : 'on-call'}.`;
    case 'author_notified':
      return `*On-call was paged;* this message is for your information (the service's policy is notify).`;
    case 'after_rollback':
      return `*On-call was paged.* Your change had been rolled back before this alert started, so it no longer ran: this is for your information.`;
    case 'author_outside_working_hours':
      return `*On-call was paged,* as it is outside your working hours.`;
    case 'deploy_exonerated':
      return `*On-call was paged, not you:* your change looks innocent (the numbers above), FYI.`;
    default:
      if (role === 'merger') return `You merged this change; its author ${paged ? 'and you were' : 'was'} paged.`;
      return paged ? '*You were paged in PagerDuty.*' : '*On-call was paged.*';
  }
}

function linkLine(view: DmView): string | undefined {
  const change = view.deploy && view.deploy.changes.length === 1 ? view.deploy.changes[0] : undefined;
  const parts = [
    link(view.compareUrl, 'GO HERE: compare old and new version'),
    link(
      change?.pullRequest?.url,
      `Pull request${change?.pullRequest?.number ? ` #${change.pullRequest.number}` : ''}`,
    ),
    link(change?.commit?.url, `Commit${change?.commit?.sha ? ` ${change.commit.sha.slice(0, 7)}` : ''}`),
    link(view.episode.annotations.runbook_url, 'Runbook'),
    link(view.episode.generatorURL, 'Prometheus'),
    link(view.pageUrl, 'PagerDuty incident'),
  ].filter(Boolean);
  return parts.length > 0 ? parts.join('  ·  ') : undefined;
}

function statusLine(view: DmView): string | undefined {
  const done = readDmState(view.dm.delivered);
  const feedback = view.episode.decision.feedback;
  const lines: string[] = [];
  if (feedback)
    lines.push(`${who(feedback.by)} said this is not their change at ${clockUtc(feedback.at)}; on-call was paged.`);
  if (done.ackedBy) lines.push(`Acknowledged by ${who(done.ackedBy)} at ${clockUtc(done.ackedAt ?? 0)}.`);
  return lines.length > 0 ? lines.join('\n') : undefined;
}

/** A Slack user id (U…/W…) becomes a mention of that person; anything else is escaped text. */
function who(by: string): string {
  return /^[UW][A-Z0-9]+$/.test(by) ? `<@${by}>` : escapeText(clip(by, NAME_MAX));
}

function buttons(view: DmView): types.Button[] {
  const value = String(view.dm.id);
  const d = view.episode.decision;
  // Acknowledge only what paged this person: a DM sent for information (shadow, notify, outside working hours,
  // a bundle, the merger) must not let its reader silence on-call's page.
  const paged = view.pages.some(
    (p) => p.status === 'open' && p.target.kind === 'person' && p.target.email === view.dm.email,
  );
  const out: types.Button[] = [];
  if (paged && !readDmState(view.dm.delivered).ackedBy) {
    out.push({
      type: 'button',
      action_id: ACTIONS.ack,
      text: { type: 'plain_text', text: 'Acknowledge' },
      style: 'primary',
      value,
    });
  }
  // "Not my change" pages on-call: nothing to ask once on-call has it because the metrics cleared the change.
  if (d.reason !== 'ambiguous_bundle' && d.reason !== 'deploy_exonerated' && !d.feedback) {
    out.push({
      type: 'button',
      action_id: ACTIONS.notMine,
      text: { type: 'plain_text', text: 'Not my change' },
      style: 'danger',
      value,
    });
  }
  const url = view.pageUrl;
  if (url && /^https?:\/\//.test(url)) {
    out.push({
      type: 'button',
      action_id: ACTIONS.open,
      text: { type: 'plain_text', text: 'Open in PagerDuty' },
      url,
      value,
    });
  }
  return out;
}
