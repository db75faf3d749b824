import type { ChangeKind, Deploy, FlagValue } from './types.js';

// What a change event is, in words and in identity. A flag flip or a config change is attributed exactly like a
// deploy of its service; only the words differ ("flag new-checkout turned on" instead of "deploy v142").

export function kindOf(d: Pick<Deploy, 'kind'>): ChangeKind {
  return d.kind ?? 'deploy';
}

/**
 * What a rollout is a rollout of, within its service and environment: the code (deploys), one flag, or one
 * config key. Stage events of one rollout share kind, subject and version; another version of the same subject
 * (a rollback, the next release, the flag turned back off) ends it.
 */
export function subjectOf(d: Pick<Deploy, 'kind' | 'flag' | 'config'>): string {
  switch (kindOf(d)) {
    case 'flag':
      return d.flag?.key ?? '';
    case 'config':
      return d.config?.key ?? '';
    default:
      return '';
  }
}

/** "deploy v142", "flag new-checkout turned on", "flag tier changed from a to b", "config change db.pool". */
export function describeChange(d: Pick<Deploy, 'kind' | 'flag' | 'config' | 'version'>): string {
  const kind = kindOf(d);
  if (kind === 'flag' && d.flag) return `flag ${d.flag.key} ${flagTransition(d.flag.from, d.flag.to)}`;
  if (kind === 'config' && d.config) {
    const { key, description } = d.config;
    if (key && description) return `config change ${key} ("${description}")`;
    if (key) return `config change ${key}`;
    if (description) return `config change "${description}"`;
  }
  return `deploy ${d.version}`;
}

/** The version a flag or config event stands for when the sender gives none (see Deploy.version). */
export function derivedVersion(d: Pick<Deploy, 'kind' | 'flag' | 'config'> & { at: number }): {
  version: string;
  previousVersion?: string;
} {
  if (kindOf(d) === 'flag' && d.flag) {
    const { key, from, to } = d.flag;
    const version = `flag:${key}=${valueText(to)}`;
    return from === undefined ? { version } : { version, previousVersion: `flag:${key}=${valueText(from)}` };
  }
  const key = d.config?.key;
  return { version: `config${key ? `:${key}` : ''}@${new Date(d.at).toISOString()}` };
}

function flagTransition(from: FlagValue | undefined, to: FlagValue): string {
  const before = onOff(from);
  const after = onOff(to);
  if (after === 'on' && before !== 'on') return 'turned on';
  if (after === 'off' && before !== 'off') return 'turned off';
  if (from === undefined) return `set to ${valueText(to)}`;
  return `changed from ${valueText(from)} to ${valueText(to)}`;
}

function onOff(v: FlagValue | undefined): 'on' | 'off' | undefined {
  if (v === true) return 'on';
  if (v === false) return 'off';
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (s === 'on' || s === 'true' || s === 'enabled') return 'on';
    if (s === 'off' || s === 'false' || s === 'disabled') return 'off';
  }
  return undefined;
}

function valueText(v: FlagValue): string {
  return typeof v === 'string' ? v : String(v);
}
