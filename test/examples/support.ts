import { execFile } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { parse } from 'yaml';

export const ROOT = new URL('../../', import.meta.url).pathname;

export function readExample(path: string): string {
  return readFileSync(join(ROOT, 'examples', path), 'utf8');
}

export function readYaml<T = Record<string, unknown>>(path: string): T {
  return parse(readExample(path)) as T;
}

/** The path of an executable on PATH, or undefined. */
export function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a shell script as CI runners do (bash, -e, -o pipefail), asynchronously: the service under test runs in
 * this same process and must keep answering while the script talks to it.
 */
export function runBash(script: string, opts: { cwd: string; env: Record<string, string> }): Promise<ScriptResult> {
  const file = join(opts.cwd, `step-${Math.random().toString(36).slice(2)}.sh`);
  writeFileSync(file, script);
  return new Promise((resolve) => {
    execFile(
      'bash',
      ['--noprofile', '--norc', '-eo', 'pipefail', file],
      { cwd: opts.cwd, env: opts.env, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A scratch directory with a recording stand-in for the user's own ./deploy.sh. */
export function workspace() {
  const dir = mkdtempSync(join(tmpdir(), 'changepager-example-'));
  const log = join(dir, 'deploy.log');
  writeFileSync(join(dir, 'deploy.sh'), `#!/bin/sh\necho "$*" >> ${JSON.stringify(log)}\n`);
  chmodSync(join(dir, 'deploy.sh'), 0o755);
  return {
    dir,
    /** The arguments of each ./deploy.sh call. */
    deploys: () => {
      try {
        return readFileSync(log, 'utf8').trim().split('\n').filter(Boolean);
      } catch {
        return [];
      }
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A minimal environment for scripts: what a runner has, without this test process's variables. */
export function baseEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir(), LANG: 'C.UTF-8', ...extra };
}
