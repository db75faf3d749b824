import type { Comparison } from './comparisons.js';
import { fillTemplate, hostsPattern, placeholdersOf, type TemplateValues } from './promql-template.js';
import type { Deploy } from './types.js';

// Which two series to compare for a deploy, over which time, with which step: pure, from the deploy, the alert's
// start, the service's comparisons and `now`. The queries it returns are what src/evidence/gather.ts asks
// Prometheus, and its window is what the judge (core/judge.ts) judges.

export interface PlanSettings {
  /** The window ends this long after the alert started. */
  marginMs: number;
  minStepMs: number;
  /** The most points per side and series before the step grows. */
  maxPoints: number;
}

/** One Prometheus range query: times in epoch ms. */
export interface RangeQuery {
  query: string;
  start: number;
  end: number;
  stepMs: number;
}

export type ComparisonPlan =
  | {
      kind: 'query';
      comparison: Comparison;
      by: 'version' | 'hosts';
      newLabel: string;
      oldLabel: string;
      new: RangeQuery;
      /** Starts as long before the deploy as the window is long: the judge falls back on those points. */
      old: RangeQuery;
    }
  | { kind: 'not_comparable'; comparison: Comparison; reason: string };

export interface EvidencePlan {
  /** The deploy's `at`. */
  from: number;
  /** The alert's start plus the margin, or now if sooner. */
  to: number;
  stepMs: number;
  comparisons: ComparisonPlan[];
}

export interface PlanInput {
  /** The deploy (or rollout stage) the alert is attributed to: its `at` starts the window. */
  deploy: Deploy;
  alertStartsAtMs: number;
  comparisons: readonly Comparison[];
  settings: PlanSettings;
  now: number;
}

export function planEvidence({ deploy, alertStartsAtMs, comparisons, settings, now }: PlanInput): EvidencePlan {
  const from = deploy.at;
  // Never past now: Prometheus would evaluate the future from the last samples it has and repeat them.
  const to = Math.min(alertStartsAtMs + settings.marginMs, now);
  const span = to - from;
  const stepMs = Math.max(settings.minStepMs, Math.ceil(span / settings.maxPoints / 1000) * 1000);
  // The old side reaches back a whole number of steps, so both sides' points fall on the same grid.
  const oldStart = from - Math.ceil(span / stepMs) * stepMs;
  const plan = (comparison: Comparison): ComparisonPlan => {
    if (span <= 0) {
      return {
        kind: 'not_comparable',
        comparison,
        reason: 'no time to compare: the deploy is stamped after the alert started (plus the margin) or after now',
      };
    }
    const sides = sidesFor(comparison, deploy);
    if ('reason' in sides) return { kind: 'not_comparable', comparison, reason: sides.reason };
    return {
      kind: 'query',
      comparison,
      by: sides.by,
      newLabel: sides.newLabel,
      oldLabel: sides.oldLabel,
      new: { query: fillTemplate(comparison.query, sides.newValues), start: from, end: to, stepMs },
      old: { query: fillTemplate(comparison.query, sides.oldValues), start: oldStart, end: to, stepMs },
    };
  };
  return { from, to, stepMs, comparisons: comparisons.map(plan) };
}

interface Sides {
  by: 'version' | 'hosts';
  newLabel: string;
  oldLabel: string;
  newValues: TemplateValues;
  oldValues: TemplateValues;
}

/**
 * How a comparison tells the new from the old for this deploy. A template with {hosts} compares a deploy that
 * lists hosts (a canary) with every other host; one with {version} compares the two versions. Either way the
 * placeholders it does not use for that are filled so they select everything: {hosts} `.+`, {not_hosts} empty.
 */
function sidesFor(comparison: Comparison, deploy: Deploy): Sides | { reason: string } {
  const uses = placeholdersOf(comparison.query);
  const common = { service: deploy.service, environment: deploy.environment };
  const byHosts = uses.has('hosts') && deploy.hosts.length > 0;
  if (uses.has('version')) {
    if (!byHosts && deploy.kind !== undefined && deploy.kind !== 'deploy') {
      return {
        reason: `a ${deploy.kind} change leaves the version label as it was: there is no other version to compare`,
      };
    }
    if (deploy.previousVersion === undefined) return { reason: 'the deploy names no previous version to compare with' };
    if (deploy.previousVersion === deploy.version) {
      return { reason: `the previous version is the new one (${deploy.version}): nothing to compare` };
    }
  }
  const versions = uses.has('version')
    ? { new: deploy.version, old: deploy.previousVersion }
    : { new: undefined, old: undefined };
  if (byHosts) {
    const canary = hostsPattern(deploy.hosts);
    return {
      by: 'hosts',
      newLabel: hostsLabel(deploy.hosts),
      oldLabel: 'the other hosts',
      newValues: { ...common, version: versions.new, hosts: canary, notHosts: '' },
      oldValues: { ...common, version: versions.old, hosts: '.+', notHosts: canary },
    };
  }
  if (!uses.has('version')) {
    return { reason: 'the deploy lists no hosts: this comparison sets the canary hosts against the others' };
  }
  return {
    by: 'version',
    newLabel: deploy.version,
    oldLabel: deploy.previousVersion as string,
    newValues: { ...common, version: versions.new, hosts: '.+', notHosts: '' },
    oldValues: { ...common, version: versions.old, hosts: '.+', notHosts: '' },
  };
}

/** "web-1", "web-1 and web-2", "web-1, web-2 and web-3", "the 12 canary hosts". */
function hostsLabel(hosts: readonly string[]): string {
  if (hosts.length > 3) return `the ${hosts.length} canary hosts`;
  if (hosts.length === 1) return hosts[0] as string;
  return `${hosts.slice(0, -1).join(', ')} and ${hosts[hosts.length - 1]}`;
}
