import { spawn, spawnSync } from 'node:child_process';

// Tests that start changepager the way the documentation says (on its documented port, 8080, or bound to
// 0.0.0.0 as in the container image) run in a network namespace of their own with nothing but a loopback
// interface: the port is free there whatever else runs on this machine, and nothing they listen on can be
// reached from outside the namespace.

/** The unshare flags that work here: -n as root, -rn with unprivileged user namespaces; undefined: neither. */
export const UNSHARE = ((): string[] | undefined => {
  for (const flags of [['-n'], ['-rn']]) {
    const probe = spawnSync('unshare', [...flags, 'ip', 'link', 'set', 'lo', 'up'], { stdio: 'ignore' });
    if (probe.status === 0) return flags;
  }
  return undefined;
})();

export const NO_NETNS =
  'skipped: needs a network namespace of its own (unshare -n as root, or -rn with user namespaces, and iproute2)';

/**
 * Bash helpers for the scripts: `background LOG CMD…` starts a command in a process group of its own (npm start
 * runs node under sh, and stopping the group stops both), `wait_for LOG TEXT PID` waits until the log has the
 * text (bounded, and not past the process's exit), and every background command is stopped with SIGTERM when the
 * script ends.
 */
const PRELUDE = `
ip link set lo up || exit 97
BG=()
background() { local log=$1; shift; setsid "$@" >"$log" 2>&1 & BG+=("$!"); }
stop_all() {
  for p in "\${BG[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done
  for p in "\${BG[@]}"; do wait "$p" 2>/dev/null; done
}
trap stop_all EXIT
trap 'exit 143' TERM INT
wait_for() {
  for _ in $(seq 1800); do
    grep -qF -- "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { echo "exited before \\"$2\\" appeared in $1" >&2; return 1; }
    sleep 0.1
  done
  echo "gave up waiting for \\"$2\\" in $1" >&2
  return 1
}
`;

export interface IsolatedResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a bash script in its own network namespace; resolves when it exits (SIGTERM, then SIGKILL, at the limit). */
export function runIsolated(
  script: string,
  opts: { cwd: string; env: Record<string, string>; limitMs?: number },
): Promise<IsolatedResult> {
  if (!UNSHARE) throw new Error(NO_NETNS);
  const child = spawn('unshare', [...UNSHARE, 'bash', '--noprofile', '--norc', '-c', `${PRELUDE}\n${script}`], {
    cwd: opts.cwd,
    env: opts.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const pid = child.pid as number;
  const limit = setTimeout(() => {
    process.kill(-pid, 'SIGTERM');
    setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 10_000).unref();
  }, opts.limitMs ?? 240_000);
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(limit);
      resolve({ code, stdout, stderr });
    });
  });
}
