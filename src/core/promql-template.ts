import { parser } from '@prometheus-io/lezer-promql';

// A comparison's query is PromQL with placeholders, filled in once per side of the comparison:
//
//   {service} {environment} {version}   label values, each inside a double-quoted string
//   {hosts} {not_hosts}                 regexes (an alternation of host names) for =~ and !~ matchers
//
// Values are escaped for the string they land in, and, in a regex matcher, for RE2 too: a version "1.2" matches
// "1.2" and not "1x2", a quote in a label value cannot end the string. Whether a template is well formed is
// checked when the config is loaded, with Prometheus' own PromQL grammar (lezer-promql): syntax, function
// names, brackets and quotes. Not checked offline: the types of arguments (rate() of an instant vector), RE2
// syntax inside regex strings, and whether the metrics and labels exist.

export const PLACEHOLDERS = ['service', 'environment', 'version', 'hosts', 'not_hosts'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];

const KNOWN = new Set<string>(PLACEHOLDERS);
const REGEX_ONLY = new Set<string>(['hosts', 'not_hosts']);
/** `{name}`, but not a regex's `\p{Greek}` class. */
const PLACEHOLDER = /(?<!\\[pP])\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Where a placeholder sits in a template, and whether the string around it is a regex. */
interface Slot {
  start: number;
  end: number;
  name: Placeholder;
  inRegex: boolean;
}

export interface TemplateValues {
  service: string;
  environment: string;
  /** Needed when the template has {version}. */
  version?: string;
  /** RE2 patterns, already built (hostsPattern): inserted as regex, not escaped as text. */
  hosts?: string;
  notHosts?: string;
}

/** Every problem of a template, worded for a config error; empty when it can be used. */
export function templateProblems(template: string): string[] {
  return analyse(template).problems;
}

/** The placeholders a template uses. */
export function placeholdersOf(template: string): Set<Placeholder> {
  return new Set(analyse(template).slots.map((s) => s.name));
}

/** Fills a checked template. Throws for a template that templateProblems rejects or a value it needs. */
export function fillTemplate(template: string, values: TemplateValues): string {
  const { slots, problems } = analyse(template);
  if (problems.length > 0) throw new Error(`unusable template: ${problems.join('; ')}`);
  let out = '';
  let at = 0;
  for (const slot of slots) {
    out += template.slice(at, slot.start) + promqlString(valueFor(slot, values));
    at = slot.end;
  }
  return out + template.slice(at);
}

function valueFor(slot: Slot, values: TemplateValues): string {
  switch (slot.name) {
    case 'hosts':
    case 'not_hosts': {
      const pattern = slot.name === 'hosts' ? values.hosts : values.notHosts;
      if (pattern === undefined) throw new Error(`no value for {${slot.name}}`);
      return pattern;
    }
    default: {
      const value = values[slot.name];
      if (value === undefined) throw new Error(`no value for {${slot.name}}`);
      return slot.inRegex ? regexLiteral(value) : value;
    }
  }
}

/** An RE2 alternation matching exactly these host names. */
export function hostsPattern(hosts: readonly string[]): string {
  return hosts.map(regexLiteral).join('|');
}

/** Text that RE2 matches literally. */
export function regexLiteral(text: string): string {
  return text.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

/** Text as the inside of a PromQL double-quoted string (Go's escapes; a control character as \uXXXX). */
export function promqlString(text: string): string {
  return text.replace(/[\\"\p{Cc}]/gu, (c) => {
    switch (c) {
      case '\\':
        return '\\\\';
      case '"':
        return '\\"';
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      default:
        return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
    }
  });
}

function analyse(template: string): { slots: Slot[]; problems: string[] } {
  const problems: string[] = [];
  const found = [...template.matchAll(PLACEHOLDER)];
  const unknown = [...new Set(found.map((m) => m[1] ?? '').filter((name) => !KNOWN.has(name)))];
  for (const name of unknown) {
    problems.push(
      `unknown placeholder {${name}}: only ${PLACEHOLDERS.map((p) => `{${p}}`).join(' ')} can be filled in`,
    );
  }

  const tree = parser.parse(template);
  let syntaxError: number | undefined;
  tree.iterate({
    enter(node) {
      if (syntaxError === undefined && node.type.isError) syntaxError = node.from;
      return syntaxError === undefined;
    },
  });
  if (syntaxError !== undefined) problems.push(`is not valid PromQL: ${whereIn(template, syntaxError)}`);

  const slots: Slot[] = [];
  for (const m of found) {
    const name = m[1] ?? '';
    if (!KNOWN.has(name)) continue;
    const start = m.index ?? 0;
    const node = tree.resolveInner(start, 1);
    const inString = node.name === 'StringLiteral' && template[node.from] === '"';
    const op = node.parent?.getChild('MatchOp')?.firstChild?.name;
    const inRegex = inString && (op === 'EqlRegex' || op === 'NeqRegex');
    if (syntaxError === undefined && !inString) {
      problems.push(`{${name}} must be inside a double-quoted string, as in version="{version}"`);
    } else if (syntaxError === undefined && REGEX_ONLY.has(name) && !inRegex) {
      problems.push(`{${name}} is a regex: use it in a =~ or !~ matcher, as in pod=~"{hosts}"`);
    }
    slots.push({ start, end: start + m[0].length, name: name as Placeholder, inRegex });
  }

  const uses = new Set(slots.map((s) => s.name));
  if (uses.has('hosts') !== uses.has('not_hosts')) {
    problems.push(
      'must use {hosts} and {not_hosts} together, as in pod=~"{hosts}", pod!~"{not_hosts}": the old side is every ' +
        'host but the canary ones',
    );
  } else if (!uses.has('version') && !uses.has('hosts')) {
    problems.push('needs {version}, or {hosts} and {not_hosts}, to tell the new version from the old one');
  }
  return { slots, problems };
}

/** "line 2, column 14, at `[2m]))`": where a parse went wrong, for a person reading the config. */
function whereIn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  const rest = text.slice(offset).split('\n')[0] ?? '';
  const near = rest === '' ? 'at the end' : `at \`${rest.length > 24 ? `${rest.slice(0, 24)}…` : rest}\``;
  return `line ${line}, column ${column}, ${near}`;
}
