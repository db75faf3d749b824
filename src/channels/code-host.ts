import type { Change, Identity } from '../core/types.js';

// What changepager needs from a code host (GitHub, GitLab), whatever the host: a deployment its webhook reported,
// the changes that deployment shipped, and one comment on the pull or merge request of a change, written once
// and then edited. Each host's folder under src/channels/ implements these over its own webhook and REST API.

/** A deployment reported by a code host's webhook, after its signature or token was checked. */
export interface DeploymentEvent {
  host: 'github' | 'gitlab';
  /** The webhook delivery's own id (GitHub's X-GitHub-Delivery, GitLab's X-Gitlab-Event-UUID): a replay repeats it. */
  deliveryId: string;
  /** `owner/name` on GitHub, the project's path with its namespace on GitLab. */
  repository: string;
  /** The code host's environment name, mapped to a changepager service and environment by the config. */
  environment: string;
  /** The deployed commit. */
  sha: string;
  /** The branch or tag deployed, when the host says. */
  ref?: string;
  /** `success` marks a deploy; `in_progress` may mark a canary stage where the config says so. */
  state: 'success' | 'in_progress' | 'other';
  /** The host's id of the deployment, the same for each of its status updates. */
  deploymentId: string;
  /** When the host recorded this state, epoch milliseconds. */
  at: number;
  /** A link to the deployment (its log or environment page). */
  url?: string;
  /** Who started the deployment: not the author of what it shipped. */
  deployer?: Identity;
}

/** The pull request (GitHub) or merge request (GitLab, its iid) a comment goes on. */
export interface ReviewTarget {
  repository: string;
  number: number;
}

/** What changepager asks of a code host's REST API. Every failure is thrown as a CodeHostFailure. */
export interface CodeHostApi {
  /**
   * The changes a deployment of `sha` shipped: the pull or merge requests of each commit since `previousSha`
   * (or of `sha` alone when there is no previous deployment), with their author and merger, one Change each.
   */
  changesOf(repository: string, sha: string, previousSha: string | undefined): Promise<Change[]>;
  /**
   * The commit of the latest successful deployment of this host environment before the deployment `deploymentId`,
   * from the host's own list, for a deploy changepager stored no predecessor of. Optional: a host without it has
   * the changes of the deployed commit alone looked up.
   */
  previousDeployment?(repository: string, environment: string, deploymentId: string): Promise<string | undefined>;
  createComment(target: ReviewTarget, body: string): Promise<{ id: string }>;
  editComment(target: ReviewTarget, commentId: string, body: string): Promise<void>;
}

/** A code host request that failed: whether it is worth retrying, and when the host said to come back. */
export class CodeHostFailure extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'CodeHostFailure';
  }
}
