// `npm run bench:evidence`: attribution precision on the labelled scenarios of
// test/fixtures/evidence/scenarios.json. Each scenario is decided by timing alone (as changepager pages today)
// and with evidence from a real Prometheus (Debian's prometheus and promtool must be installed); the table says
// who was paged each way and whether that was the wrong person, and the totals compare the two. It also reports
// how long gathering the evidence took, the wait a page for a person would have. Writes
// bench/results/evidence-precision-<time>.json.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runScenarios, tally } from '../test/support/scenarios.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const dir = mkdtempSync(join(tmpdir(), 'changepager-precision-'));
try {
  const results = await runScenarios(dir);
  const rows = results.map((r) => ({
    scenario: r.scenario.name,
    culprit: r.scenario.culprit,
    verdict: r.evidence?.verdict ?? '-',
    without: `${r.without}${r.wrongWithout ? ' (wrong)' : ''}`,
    with: `${r.with}${r.wrongWith ? ' (wrong)' : ''}`,
    gatherMs: r.gatherMs === undefined ? '-' : r.gatherMs.toFixed(1),
  }));
  console.table(rows);
  for (const r of results) console.log(`${r.scenario.name}: ${r.evidence?.sentence ?? r.reason}`);
  const totals = tally(results);
  const authorPages = (key: 'without' | 'with') => results.filter((r) => r[key] === 'author');
  const precision = (key: 'without' | 'with') => {
    const paged = authorPages(key);
    return paged.filter((r) => r.scenario.culprit === 'deploy').length / paged.length;
  };
  const gather = results.flatMap((r) => (r.gatherMs === undefined ? [] : [r.gatherMs])).sort((a, b) => a - b);
  const at = (p: number) => gather[Math.min(gather.length - 1, Math.ceil(p * gather.length) - 1)] ?? Number.NaN;
  const summary = {
    ...totals,
    authorPagesWithout: authorPages('without').length,
    authorPagesWith: authorPages('with').length,
    precisionWithout: precision('without'),
    precisionWith: precision('with'),
    gatherMs: { n: gather.length, p50: at(0.5), p90: at(0.9), max: gather[gather.length - 1] },
  };
  console.log(summary);
  const out = join(ROOT, 'bench/results');
  mkdirSync(out, { recursive: true });
  const file = join(out, `evidence-precision-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ summary, results: rows }, null, 2)}\n`);
  console.log(`written to ${file}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
