import { spawn } from 'node:child_process';

/** A server binary the tests run (Alertmanager, Prometheus), started and waited for until it says it is ready. */
export interface Daemon {
  /** What it wrote to stdout and stderr so far. */
  output: () => string;
  /** SIGTERM, then SIGKILL after 5 s; resolves once it has exited. */
  stop: () => Promise<void>;
}

/**
 * Starts `command` and resolves once `readyUrl` answers 200 (Prometheus' and Alertmanager's /-/ready), or throws
 * with its output when it exits first or is not ready within `readyWithinMs`.
 */
export async function startDaemon(
  name: string,
  command: string,
  args: readonly string[],
  opts: { readyUrl: string; readyWithinMs: number },
): Promise<Daemon> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let dead = false;
  void exited.then(() => {
    dead = true;
  });
  const stop = async () => {
    if (!dead) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + opts.readyWithinMs;
  for (;;) {
    if (dead) throw new Error(`${name} exited before it was ready:\n${out}`);
    try {
      if ((await fetch(opts.readyUrl)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${name} not ready within ${opts.readyWithinMs / 1000} s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { output: () => out, stop };
}
