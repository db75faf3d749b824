import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prometheusInstalled } from '../support/prometheus.js';
import { loadScenarios, runScenarios, type ScenarioResult, tally } from '../support/scenarios.js';

// Attribution precision on the labelled scenarios (test/fixtures/evidence/scenarios.json), on a real Prometheus:
// the judge says of each what the file expects, and evidence pages the wrong person less often than timing
// alone. `npm run bench:evidence` prints the same run as a table.

const installed = prometheusInstalled();
const { scenarios } = loadScenarios();

describe.skipIf(!installed)('the labelled scenarios', () => {
  let dir: string;
  let results: ScenarioResult[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'changepager-precision-'));
    results = await runScenarios(dir);
  }, 90_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(scenarios.map((s) => [s.name, s.culprit, s.verdict] as const))(
    '%s (caused by the %s): the judge says %s',
    (name, _culprit, verdict) => {
      const result = results.find((r) => r.scenario.name === name);
      expect(result?.without, 'timing alone pages the author of every scenario').toBe('author');
      expect(result?.evidence?.verdict, result?.evidence?.sentence).toBe(verdict);
    },
  );

  it('has deploys that did and did not cause their alert, in equal numbers', () => {
    expect(tally(results)).toMatchObject({ scenarios: 22, deployAtFault: 11, deployInnocent: 11 });
  });

  it('pages the wrong person 6 times with evidence, against 11 by timing alone', () => {
    expect(tally(results)).toEqual({
      scenarios: 22,
      deployAtFault: 11,
      deployInnocent: 11,
      wrongWithout: 11,
      wrongWith: 6,
      innocentAuthorPagedWithout: 11,
      innocentAuthorPagedWith: 4,
      guiltyAuthorMissedWithout: 0,
      guiltyAuthorMissedWith: 2,
    });
  });
});
