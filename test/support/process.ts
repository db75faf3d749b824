import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** tsx's loader by its path, so the service can be started from any working directory. */
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

export interface ServiceProcess {
  child: ChildProcess;
  url: string;
  /** The "changepager listening" log line: url, config, database, delivery. */
  listening: Record<string, unknown>;
  output: () => string;
  /** SIGKILL: no shutdown hook runs, as in a crash or an OOM kill. */
  kill(): Promise<void>;
  /** SIGTERM and wait for the process to exit. */
  stop(): Promise<number | null>;
}

export interface ProcessOptions {
  /** The working directory; default the checkout. */
  cwd?: string;
  /** The script to run with `serve`; default this checkout's src/cli.ts through tsx. */
  cli?: string;
}

/**
 * Runs changepager as its own process (`src/cli.ts serve` through tsx), so a test can kill it for real.
 * Resolves once it logs that it is listening; the URL comes from that log line (PORT=0 picks a free port).
 */
export function startServiceProcess(env: Record<string, string>, opts: ProcessOptions = {}): Promise<ServiceProcess> {
  const args = opts.cli ? [opts.cli, 'serve'] : ['--import', TSX, join(ROOT, 'src/cli.ts'), 'serve'];
  const child = spawn(process.execPath, args, {
    cwd: opts.cwd ?? ROOT,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`service did not start:\n${out}`)), 20_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.includes('"changepager listening"'));
      if (!line) return;
      clearTimeout(timer);
      resolve({
        child,
        url: JSON.parse(line).url,
        listening: JSON.parse(line),
        output: () => out,
        async kill() {
          child.kill('SIGKILL');
          await exited;
        },
        async stop() {
          child.kill('SIGTERM');
          return exited;
        },
      });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`service exited with ${code} before listening:\n${out}`));
    });
  });
}
