import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_NETNS, runIsolated, UNSHARE } from '../support/netns.js';
import { copyPackage } from '../support/package-copy.js';
import { blocksUnder, fencedBlocks, ROOT, transcript } from './markdown.js';

// The README's quickstart as a newcomer runs it: `npm start` in the package folder, then, in another terminal in
// the same folder, each of its `sh` blocks as written, in order, in one shell (they share DEPLOY_AT and
// ALERT_AT). Then the "Try it" blocks of docs/cli.md against the same service. What they print is compared with
// what the documents say they print. It runs in a network namespace of its own, so the documented
// 127.0.0.1:8080 is free whatever else runs on this machine.

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const QUICKSTART = '## Five-minute quickstart';
const quickstart = blocksUnder('README.md', QUICKSTART, 'sh');
const answers = blocksUnder('README.md', QUICKSTART, 'json');
const tryIt = fencedBlocks('docs/cli.md').filter((b) => b.heading === '## Try it');

interface Step {
  name: string;
  script: string;
  /** stdout and stderr in one, as a terminal shows them (console transcripts). */
  combined?: boolean;
  /** Wait for this text in the service's log before the step. */
  after?: string;
}

const steps: Step[] = [
  ...quickstart.map((b, i) => ({
    name: `quickstart-${i + 1}`,
    script: b.code,
    // The README reads the log ("The service log shows the page…") before it asks who was paged.
    ...(b.code.includes('/v1/alerts/') ? { after: 'trigger page for alice@example.com' } : {}),
  })),
  // "Sending the same payload again answers …": the alert block, once more.
  { name: 'alert-again', script: quickstart.find((b) => b.code.includes('/v1/alertmanager'))?.code ?? 'false' },
  ...tryIt.flatMap((b, i) =>
    b.lang === 'console'
      ? transcript(b).map((t, j) => ({ name: `cli-${i + 1}-${j + 1}`, script: `${t.command}\n`, combined: true }))
      : [{ name: `cli-${i + 1}`, script: b.code }],
  ),
];

/** Times differ from run to run: ISO instants and "12:21 UTC" are compared as placeholders. */
function normalize(value: unknown): unknown {
  if (typeof value === 'string') {
    return value.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, '<time>').replace(/\b\d\d:\d\d UTC\b/g, 'HH:MM UTC');
  }
  if (Array.isArray(value)) return value.map(normalize);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v)]));
  }
  return value;
}

describe.skipIf(!UNSHARE)(`the README's quickstart, run as written${UNSHARE ? '' : ` (${NO_NETNS})`}`, () => {
  const pkg = copyPackage('changepager-quickstart-');
  const work = mkdtempSync(join(tmpdir(), 'changepager-quickstart-run-'));
  const out = (name: string, stream: 'stdout' | 'stderr' | 'code') =>
    readFileSync(join(work, 'out', `${name}.${stream}`), 'utf8');
  const json = (name: string) => JSON.parse(out(name, 'stdout'));
  let log = '';

  beforeAll(async () => {
    // The README leads with the command that starts the service; npm install is what this checkout already did.
    const start = fencedBlocks('README.md')[0];
    expect(start?.code).toContain('npm install && npm start');
    expect(quickstart.length).toBeGreaterThanOrEqual(4);
    mkdirSync(join(work, 'blocks'));
    mkdirSync(join(work, 'out'));
    mkdirSync(join(work, 'home'));
    const driver = steps.map((s) => {
      writeFileSync(join(work, 'blocks', `${s.name}.sh`), s.script);
      const o = join(work, 'out', s.name);
      const redirect = s.combined ? `>"${o}.stdout" 2>&1` : `>"${o}.stdout" 2>"${o}.stderr"`;
      return [
        s.after ? `wait_for service.log '${s.after}' "\${BG[0]}"` : '',
        `{ . "${join(work, 'blocks', `${s.name}.sh`)}"; } ${redirect}; echo $? >"${o}.code"`,
      ].join('\n');
    });
    const result = await runIsolated(
      [
        `background service.log npm start`,
        `wait_for service.log '"changepager listening"' "\${BG[0]}" || { cat service.log; exit 1; }`,
        ...driver,
        `cp service.log "${join(work, 'service.log')}"`,
      ].join('\n'),
      {
        cwd: pkg.dir,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: join(work, 'home'),
          LANG: 'C.UTF-8',
          // npx keeps what it links in its cache: a cache of this run's own leaves nothing behind.
          npm_config_cache: join(work, 'npm-cache'),
          npm_config_update_notifier: 'false',
        },
        limitMs: 200_000,
      },
    );
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    log = readFileSync(join(work, 'service.log'), 'utf8');
  }, 240_000);
  afterAll(() => {
    pkg.remove();
    rmSync(work, { recursive: true, force: true });
  });

  it('starts on the embedded default, saying where its config and database are', () => {
    const line = log.split('\n').find((l) => l.includes('"changepager listening"')) ?? '{}';
    expect(JSON.parse(line)).toMatchObject({
      url: 'http://127.0.0.1:8080',
      config: join(pkg.dir, 'config/changepager.yaml'),
      database: join(pkg.dir, 'data/changepager.db'),
      delivery: { pages: 'log', dms: 'log' },
    });
  });

  it('records the deploy: 201 Created with its Location, as the README says', () => {
    const deploy = out('quickstart-1', 'stdout');
    expect(README).toContain('The answer is `201 Created` with a `Location: /v1/deploys/gha-run-8812731` header');
    expect(deploy).toMatch(/^HTTP\/1\.1 201 Created\r?\n/);
    expect(deploy).toMatch(/\r?\nLocation: \/v1\/deploys\/gha-run-8812731\r?\n/i);
  });

  it('pages alice for the alert, with the decision the README shows', () => {
    const shown = JSON.parse(answers[0]?.code ?? '{}');
    const answer = json('quickstart-2');
    expect(answer.decisions[0].decision).toMatchObject({
      reason: 'author_paged',
      targets: [{ email: 'alice@example.com' }],
    });
    expect(answer.decisions[0].decision.sentence).toContain('Paging alice@example.com.');
    expect(normalize(answer)).toEqual(normalize(shown));
  });

  it('delivers the page to the log, as the README says', () => {
    expect(README).toContain('`"msg":"trigger page for alice@example.com"`');
    expect(log).toContain('"msg":"trigger page for alice@example.com"');
  });

  it('shows who was paged and every delivery attempt', () => {
    const history = json('quickstart-3');
    expect(history.fingerprint).toBe('c0ffee0123456789');
    expect(history.episodes[0].decision.reason).toBe('author_paged');
    expect(history.episodes[0].pages).toMatchObject([
      { target: { kind: 'person', email: 'alice@example.com' }, status: 'open', delivered: { log: 'trigger' } },
    ]);
    expect(history.episodes[0].deliveries).toMatchObject([{ attempt: 1, channel: 'log', outcome: 'delivered' }]);
  });

  it('previews the alert from another host: on-call, nothing stored, as the README shows', () => {
    const shown = JSON.parse(answers.at(-1)?.code ?? '{}');
    expect(normalize(json('quickstart-4'))).toEqual(normalize(shown));
  });

  it('treats the same payload sent again as a repeat', () => {
    expect(README).toContain('same payload again answers `"newEpisodes":0,"repeats":1`');
    expect(json('alert-again')).toMatchObject({ accepted: 1, newEpisodes: 0, repeats: 1, decisions: [] });
  });

  it('runs docs/cli.md "Try it" as written, against the same service', () => {
    expect(tryIt.map((b) => b.lang)).toEqual(['console', 'sh', 'sh', 'console']);
    // Transcripts print exactly what the page shows.
    for (const [i, b] of tryIt.entries()) {
      if (b.lang !== 'console') continue;
      for (const [j, t] of transcript(b).entries()) {
        expect(out(`cli-${i + 1}-${j + 1}`, 'stdout'), `docs/cli.md line ${b.line}: $ ${t.command}`).toBe(t.output);
      }
    }
    // The deploy from a terminal: the id on stdout, what was recorded on stderr, and no --url needed.
    const id = out('cli-2', 'stdout').trim();
    expect(id).toMatch(/^cli-[0-9a-f-]{36}$/);
    expect(out('cli-2', 'stderr')).toBe(`changepager: recorded checkout 2026.11.26-4b1d2e7 (canary) as ${id}\n`);
    // The canary gate, asked once: pending, exit 2, the sentence once and on stdout only.
    expect(out('cli-3', 'code').trim()).toBe('2');
    expect(out('cli-3', 'stdout')).toMatch(
      /^pending: checkout deploy 2026\.11\.26-4b1d2e7 \(canary\) in production: no alert attributed so far/,
    );
    expect(out('cli-3', 'stdout').split('\n').filter(Boolean)).toHaveLength(1);
    expect(out('cli-3', 'stderr')).toBe('');
  });
});
