#!/usr/bin/env node
import { processIo } from './cli/io.js';
import { DEFAULT_CONFIG_PATH } from './config/default-path.js';
import type { Config } from './config/load.js';

const USAGE = `usage:
  changepager [serve]              start the service (config: $CHANGEPAGER_CONFIG or ${DEFAULT_CONFIG_PATH})
  changepager check-config FILE    validate a config file; exits 1 listing every problem
  changepager deploy --service S … tell changepager what shipped (from a pipeline; --help for options)
  changepager verdict ID [--wait]  canary gate: exits 0 healthy, 1 failing, 2 pending/timed out
  changepager healthcheck          asks /healthz where serve listens with the same config; exits 0 or 1
  changepager migrate              brings the configured database's schema up to date, then exits`;

async function run(argv: string[]): Promise<number> {
  const [command = 'serve', ...rest] = argv;
  switch (command) {
    case 'serve': {
      // Loaded here so that the pipeline commands (deploy, verdict) never load the server and its database.
      const { main } = await import('./main.js');
      await main();
      return -1; // keep running
    }
    case 'deploy': {
      const { runDeploy } = await import('./cli/deploy.js');
      return runDeploy(rest, processIo());
    }
    case 'verdict': {
      const { runVerdict } = await import('./cli/verdict.js');
      return runVerdict(rest, processIo());
    }
    case 'healthcheck': {
      const { runHealthcheck } = await import('./cli/healthcheck.js');
      return runHealthcheck(rest, processIo());
    }
    case 'migrate': {
      const { runMigrate } = await import('./cli/migrate.js');
      return runMigrate(rest, processIo());
    }
    case 'check-config': {
      const file = rest[0];
      if (!file || rest.length > 1) {
        process.stderr.write(`${USAGE}\n`);
        return 2;
      }
      // Loaded here, like the commands above, so that deploy and verdict never load the config schema.
      const { ConfigError, loadConfig } = await import('./config/load.js');
      try {
        const config = loadConfig({ path: file, env: process.env });
        process.stdout.write(
          `${file}: OK (${Object.keys(config.services).length} services, ${config.directory.people.length} people, ${config.tokens.length} tokens${evidenceSummary(config)})\n`,
        );
        return 0;
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        process.stderr.write(`${err.message}\n`);
        return 1;
      }
    }
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return 0;
    default:
      process.stderr.write(`unknown command "${command}"\n${USAGE}\n`);
      return 2;
  }
}

/** "; evidence from http://prometheus:9090, 3 PromQL templates checked": what check-config looked at beyond the schema. */
function evidenceSummary(config: Config): string {
  if (!config.prometheus) return '';
  const lists = [config.evidence.defaults, ...Object.values(config.evidence.services)];
  const templates = new Set(lists.flatMap((p) => p.comparisons.map((c) => c.query)));
  return `; evidence from ${config.prometheus.url}, ${templates.size} PromQL templates checked`;
}

run(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
