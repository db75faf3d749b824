import { policyFor } from '../../config/policy.js';
import { type CommentFacts, commentBody, nextCommentStep } from '../../core/code-host.js';
import { compareLink } from '../../core/links.js';
import type { Deploy } from '../../core/types.js';
import type { DeliveryResult, OutboxHandler } from '../../deliver/notifier.js';
import type { PageWithMembers } from '../../store/store.js';
import type { ChannelDeps } from '../channel.js';
import { CodeHostFailure, type ReviewTarget } from '../code-host.js';
import { commentsOn } from './config.js';
import type { CodeHostDefinition } from './index.js';

// The comment about a page on the pull or merge request of the change it was attributed to: written once, edited
// when the page resolves or someone says "not my change". Its own outbox kind and lane: a code host that is down
// or rate limited delays only its comments, never a page or a DM. What to do is core/code-host.ts
// nextCommentStep; this file reads the page and makes the request it names.

/**
 * How long a comment about a new page waits for the page's incident link: the page and its comment are queued
 * together and delivered in separate lanes, so the comment can come first. A paging channel that gives no link
 * (the log) costs the comment this much delay, once.
 */
export const LINK_WAIT_MS = 60_000;

/** The page's state keys this host's comment keeps (in the page's delivery record, next to PagerDuty's). */
export function commentKeys(host: string) {
  return { id: `${host}_comment_id`, digest: `${host}_comment_digest` };
}

/** The pull or merge request a page's comment goes on, with the deploy, or why there is none. */
export function commentTarget(
  deploy: Deploy | undefined,
  host: string,
): { target: ReviewTarget; deploy: Deploy } | { none: string } {
  if (!deploy?.source || deploy.source.host !== host) return { none: `the page's deploy did not come from ${host}` };
  const [change, ...more] = deploy.changes;
  if (!change || more.length > 0) return { none: 'the deploy does not name exactly one change' };
  const number = change.pullRequest?.number;
  if (number === undefined) return { none: 'the change has no pull request' };
  return { target: { repository: deploy.source.repository, number }, deploy };
}

export function commentHandler(deps: ChannelDeps<unknown>, host: CodeHostDefinition): OutboxHandler {
  const { store, config, paging } = deps;
  const keys = commentKeys(host.name);
  return {
    channel: host.name,
    async handle(ref): Promise<DeliveryResult> {
      const page = await store.pageWithMembers(Number(ref));
      if (!page) return { ok: false, retry: false, detail: `page ${ref} does not exist` };
      const subject = await subjectOf(page);
      if (
        'body' in subject &&
        page.page.status === 'open' &&
        paging.linkOf(page.page) === undefined &&
        deps.now() - page.page.openedAt < LINK_WAIT_MS
      ) {
        return {
          ok: false,
          retry: true,
          retryAfterMs: 5_000,
          waiting: true,
          detail: 'waiting for the page to be delivered, for its link',
        };
      }
      const told = page.page.delivered;
      const step = nextCommentStep(subject, {
        ...(told[keys.id] === undefined ? {} : { id: told[keys.id] }),
        ...(told[keys.digest] === undefined ? {} : { digest: told[keys.digest] }),
      });
      if (step.do === 'nothing' || !('target' in subject)) {
        return { ok: true, detail: `no comment: ${step.do === 'nothing' ? step.why : 'no pull request'}` };
      }
      const target = subject.target;
      const at = `${target.repository}#${target.number}`;
      try {
        if (step.do === 'create') {
          const { id } = await host.api.createComment(target, step.body);
          return { ok: true, detail: `commented on ${at}`, delivered: { [keys.id]: id, [keys.digest]: step.digest } };
        }
        await host.api.editComment(target, step.id, step.body);
        return { ok: true, detail: `edited the comment on ${at}`, delivered: { [keys.digest]: step.digest } };
      } catch (err) {
        if (!(err instanceof CodeHostFailure)) throw err;
        return {
          ok: false,
          retry: err.retryable,
          detail: `${at}: ${err.message}`,
          ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }),
        };
      }
    },
  };

  /** The pull request a page's comment goes on and what it says, or why the page gets none. */
  async function subjectOf(page: PageWithMembers): Promise<{ target: ReviewTarget; body: string } | { none: string }> {
    const deployId = page.members.find((m) => m.decision.deployId)?.decision.deployId;
    const deploy = deployId === undefined ? undefined : await store.getDeploy(deployId);
    const where = commentTarget(deploy, host.name);
    if ('none' in where) return where;
    if (page.members.length === 0) return { none: 'the page has no alerts' };
    if (!commentsOn(host.settings, page.page.service)) return { none: `comments are off for ${page.page.service}` };
    return { target: where.target, body: commentBody(factsOf(page, where.deploy)) };
  }

  function factsOf({ page, members }: PageWithMembers, deploy: Deploy): CommentFacts {
    const first = members[0];
    const feedback = members.find((m) => m.decision.feedback)?.decision.feedback;
    const template = policyFor(config, page.service).compareUrl;
    const incidentUrl = paging.linkOf(page);
    const facts: CommentFacts = {
      alertnames: [...new Set(members.map((m) => m.labels.alertname ?? '(unnamed alert)'))],
      service: page.service,
      environment: page.environment,
      startsAtMs: first ? first.startsAtMs : page.openedAt,
      deploy,
      paged: page.target,
    };
    const summary = first?.annotations.summary;
    if (summary) facts.summary = summary;
    if (page.status === 'resolved' && page.resolvedAt !== undefined) facts.resolvedAt = page.resolvedAt;
    if (feedback) facts.notMine = { by: feedback.by, at: feedback.at };
    if (incidentUrl) facts.incidentUrl = incidentUrl;
    if (deploy.source?.compareUrl) facts.compareUrl = deploy.source.compareUrl;
    // The link's time range ends when the page did (or opened): a stable text, so a retry edits nothing.
    if (template) facts.dashboardUrl = compareLink(template, deploy, page.resolvedAt ?? page.openedAt);
    return facts;
  }
}
