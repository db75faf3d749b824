import { parser } from '@prometheus-io/lezer-promql';
import { describe, expect, it } from 'vitest';
import { BUILT_IN_COMPARISONS } from '../../src/core/comparisons.js';
import {
  fillTemplate,
  hostsPattern,
  placeholdersOf,
  promqlString,
  regexLiteral,
  templateProblems,
} from '../../src/core/promql-template.js';

// PromQL templates: which ones a config may hold, and how values are filled in so that no label value can
// change the query's meaning.

/** Whether text parses as PromQL without an error node. */
function parses(query: string): boolean {
  let ok = true;
  parser.parse(query).iterate({
    enter(node) {
      if (node.type.isError) ok = false;
    },
  });
  return ok;
}

describe('templateProblems', () => {
  it.each(BUILT_IN_COMPARISONS.map((c) => [c.name, c.query]))('the built-in %s is usable', (_name, query) => {
    expect(templateProblems(query)).toEqual([]);
  });

  it.each([
    { intent: 'by version', query: 'sum(rate(x{service="{service}", version="{version}"}[2m]))' },
    {
      intent: 'by hosts, for canaries that do not label versions',
      query: 'sum(rate(x{service="{service}", pod=~"{hosts}", pod!~"{not_hosts}"}[2m]))',
    },
    {
      intent: 'hosts inside a larger regex (instance with its port)',
      query: 'up{instance=~"({hosts})(:[0-9]+)?", instance!~"({not_hosts})(:[0-9]+)?"}',
    },
    { intent: 'a value placeholder in a regex matcher', query: 'x{version=~"{version}|canary"}' },
    { intent: 'a Unicode class in a regex is no placeholder', query: 'x{version="{version}", name=~"\\\\p{Greek}+"}' },
    {
      intent: 'several lines',
      query: 'sum(rate(x{version="{version}"}[2m]))\n/\nsum(rate(y{version="{version}"}[2m]))',
    },
  ])('accepts a template $intent', ({ query }) => {
    expect(templateProblems(query)).toEqual([]);
  });

  it.each([
    {
      intent: 'a misspelt placeholder',
      query: 'x{version="{version}", service="{servce}"}',
      problems: [
        'unknown placeholder {servce}: only {service} {environment} {version} {hosts} {not_hosts} can be filled in',
      ],
    },
    {
      intent: 'an unclosed parenthesis',
      query: 'sum(rate(x{version="{version}"}[2m])',
      problems: ['is not valid PromQL: line 1, column 37, at the end'],
    },
    {
      intent: 'an unclosed brace',
      query: 'rate(x{version="{version}"[2m])',
      problems: ['is not valid PromQL: line 1, column 27, at `[2m])`'],
    },
    {
      intent: 'an unterminated string',
      query: 'x{version="{version}}',
      problems: ['is not valid PromQL: line 1, column 22, at the end'],
    },
    {
      intent: 'a function PromQL does not have',
      query: 'ratee(x{version="{version}"}[2m])',
      problems: ['is not valid PromQL: line 1, column 6, at `(x{version="{version}"}[…`'],
    },
    {
      intent: 'an error on the second line',
      query: 'sum(x{version="{version}"})\n/ sum(y{version="{version}"}) +',
      problems: ['is not valid PromQL: line 2, column 32, at the end'],
    },
    {
      intent: 'a placeholder outside any string',
      query: 'x{version="{version}"} offset {version}',
      problems: ['is not valid PromQL: line 1, column 31, at `{version}`'],
    },
    {
      intent: 'a placeholder in a single-quoted string (escaped for double quotes only)',
      query: "x{version='{version}'}",
      problems: ['{version} must be inside a double-quoted string, as in version="{version}"'],
    },
    {
      intent: '{hosts} in an equality matcher',
      query: 'x{pod="{hosts}", pod!~"{not_hosts}"}',
      problems: ['{hosts} is a regex: use it in a =~ or !~ matcher, as in pod=~"{hosts}"'],
    },
    {
      intent: '{hosts} without {not_hosts} (the old side would include the canary)',
      query: 'x{pod=~"{hosts}"}',
      problems: [expect.stringMatching(/^must use \{hosts\} and \{not_hosts\} together/)],
    },
    {
      intent: 'nothing that tells the sides apart',
      query: 'sum(rate(x{service="{service}"}[2m]))',
      problems: ['needs {version}, or {hosts} and {not_hosts}, to tell the new version from the old one'],
    },
  ])('rejects $intent', ({ query, problems }) => {
    expect(templateProblems(query)).toEqual(problems);
  });
});

describe('fillTemplate', () => {
  const values = { service: 'checkout', environment: 'production', version: '2026.11.26-3f2a9c1' };

  it('puts each value where its placeholder was', () => {
    expect(fillTemplate('x{service="{service}", environment="{environment}", version="{version}"}', values)).toBe(
      'x{service="checkout", environment="production", version="2026.11.26-3f2a9c1"}',
    );
  });

  it('escapes a value so it stays one string: quotes, backslashes, line breaks, control characters', () => {
    const filled = fillTemplate('x{version="{version}"}', { ...values, version: 'a"b\\c\nd\u0001' });
    expect(filled).toBe('x{version="a\\"b\\\\c\\nd\\u0001"}');
    expect(parses(filled)).toBe(true);
  });

  it('a value in a regex matcher matches itself only: RE2 metacharacters escaped, then the string', () => {
    expect(fillTemplate('x{version=~"{version}"}', { ...values, version: '1.2+build(7)' })).toBe(
      'x{version=~"1\\\\.2\\\\+build\\\\(7\\\\)"}',
    );
  });

  it('fills {hosts} and {not_hosts} with the patterns given, as regex', () => {
    const filled = fillTemplate('x{version="{version}", pod=~"{hosts}", pod!~"{not_hosts}"}', {
      ...values,
      hosts: hostsPattern(['web-1.example', 'web-2.example']),
      notHosts: '',
    });
    expect(filled).toBe('x{version="2026.11.26-3f2a9c1", pod=~"web-1\\\\.example|web-2\\\\.example", pod!~""}');
    expect(parses(filled)).toBe(true);
  });

  it('refuses to fill a template that is not usable, or without a value it needs', () => {
    expect(() => fillTemplate('x{version="{version}"', values)).toThrow(/unusable template/);
    expect(() => fillTemplate('x{pod=~"{hosts}", pod!~"{not_hosts}"}', values)).toThrow(/no value for \{hosts\}/);
    expect(() => fillTemplate('x{version="{version}"}', { service: 's', environment: 'e' })).toThrow(
      /no value for \{version\}/,
    );
  });

  it('placeholdersOf lists what a template uses', () => {
    expect([...placeholdersOf('x{service="{service}", pod=~"{hosts}", pod!~"{not_hosts}"}')].sort()).toEqual([
      'hosts',
      'not_hosts',
      'service',
    ]);
  });
});

describe('escaping', () => {
  it.each([
    { text: 'web-1', regex: 'web-1' },
    { text: 'a.b*c+d?', regex: 'a\\.b\\*c\\+d\\?' },
    { text: '(x|y)[z]{2}', regex: '\\(x\\|y\\)\\[z\\]\\{2\\}' },
    { text: '^$\\', regex: '\\^\\$\\\\' },
  ])('regexLiteral($text)', ({ text, regex }) => {
    expect(regexLiteral(text)).toBe(regex);
  });

  it('hostsPattern is an alternation of the escaped names', () => {
    expect(hostsPattern(['a.example', 'b'])).toBe('a\\.example|b');
  });

  it('promqlString leaves ordinary text alone', () => {
    expect(promqlString('2026.11.26-3f2a9c1 ünïcode')).toBe('2026.11.26-3f2a9c1 ünïcode');
  });
});
