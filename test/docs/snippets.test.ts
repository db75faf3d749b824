import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { which } from '../examples/support.js';
import { blocksUnder, fencedBlocks, ROOT } from './markdown.js';

// The configuration snippets of the README and docs/ are checked by what reads them: Alertmanager's own amtool for
// the Alertmanager ones, changepager's config loader for its own.

const amtool = which('amtool');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const ALERTMANAGER = '## Pointing Alertmanager at it';

interface Route {
  route: { group_wait?: string; group_interval?: string; repeat_interval?: string };
  receivers?: { webhook_configs: { http_config: { authorization: { credentials_file?: string } } }[] }[];
}

const seconds = (d: string | undefined) => {
  const m = /^(\d+)([smh])$/.exec(d ?? '');
  return m ? Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as 's' | 'm' | 'h'] : Number.NaN;
};

describe("the README's Alertmanager snippets", () => {
  const [production, tryingOut] = blocksUnder('README.md', ALERTMANAGER, 'yaml').map((b) => parse(b.code) as Route);
  const dir = mkdtempSync(join(tmpdir(), 'changepager-am-docs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('spell out the timers that set the pace, with shorter ones for trying it out', () => {
    // The first is Alertmanager's defaults, written out so that the text beside it can name them.
    expect(production?.route).toMatchObject({ group_wait: '30s', group_interval: '5m' });
    expect(seconds(tryingOut?.route.group_wait)).toBeLessThan(30);
    expect(seconds(tryingOut?.route.group_interval)).toBeLessThan(60);
    // And the text next to them says what those timers do to a newcomer's first alert and its resolve.
    const section = README.slice(
      README.indexOf(ALERTMANAGER),
      README.indexOf('\n## ', README.indexOf(ALERTMANAGER) + 1),
    );
    expect(section).toContain('The first decision comes `group_wait` (30 s) after');
    expect(section).toContain('every resolve, waits for the next `group_interval`');
    expect(section).toContain('While trying changepager out');
  });

  it.skipIf(!amtool)(
    `pass amtool check-config${amtool ? '' : ' (skipped: amtool not installed; apt-get install prometheus-alertmanager)'}`,
    async () => {
      const tokenFile = join(dir, 'changepager-token');
      writeFileSync(tokenFile, 'a-token\n');
      const receivers = (production?.receivers ?? []).map((r) => ({
        ...r,
        webhook_configs: r.webhook_configs.map((w) => ({
          ...w,
          // amtool reads credentials_file, so it must exist.
          http_config: { authorization: { ...w.http_config.authorization, credentials_file: tokenFile } },
        })),
      }));
      // The trying-it-out block is a route: it goes with the first block's receivers.
      for (const [name, config] of [
        ['production', { ...production, receivers }],
        ['trying it out', { ...tryingOut, receivers }],
      ] as const) {
        const file = join(dir, `${name.replaceAll(' ', '-')}.yml`);
        writeFileSync(file, stringify(config));
        const out = await new Promise<string>((resolve) =>
          execFile(amtool as string, ['check-config', file], (err, stdout, stderr) =>
            resolve(`${err ? 'FAILED ' : ''}${stdout}${stderr}`),
          ),
        );
        expect(out, name).toContain('SUCCESS');
        expect(out, name).not.toContain('FAILED');
      }
    },
  );
});

describe('the changepager config snippets', () => {
  const snippets = [
    ...blocksUnder('README.md', '## PagerDuty', 'yaml').map((b) => ({ where: 'README.md PagerDuty', ...b })),
    ...blocksUnder('README.md', '## Slack', 'yaml').map((b) => ({ where: 'README.md Slack', ...b })),
    ...fencedBlocks('docs/pagerduty.md')
      .filter((b) => b.lang === 'yaml')
      .map((b) => ({ where: 'docs/pagerduty.md', ...b })),
    ...fencedBlocks('docs/slack.md')
      .filter((b) => b.lang === 'yaml')
      .map((b) => ({ where: 'docs/slack.md', ...b })),
  ];

  it('are all here: the README and the PagerDuty and Slack pages have one each at least', () => {
    expect(snippets.map((s) => s.where)).toEqual(
      expect.arrayContaining(['README.md PagerDuty', 'README.md Slack', 'docs/pagerduty.md', 'docs/slack.md']),
    );
  });

  it.each(snippets.map((s) => [`${s.where} (line ${s.line})`, s.code] as const))(
    '%s loads as a config once the secrets it names are set',
    (_where, yaml) => {
      // Each *_env key names a variable: set them all, as the deployment would.
      const env = Object.fromEntries([...yaml.matchAll(/_env: (\w+)/g)].map((m) => [m[1], `secret-${m[1]}`]));
      const config = parseConfig(yaml, { path: 'snippet.yaml', env });
      expect(config.pagerduty ?? config.slack).toBeDefined();
    },
  );
});
