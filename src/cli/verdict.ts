import { parseArgs } from 'node:util';
import { durationMs } from '../core/time.js';
import {
  type Answer,
  type CliIo,
  describeFailure,
  endpoint,
  exchange,
  networkFailure,
  retryable,
  usageProblems,
} from './io.js';

export const VERDICT_USAGE = `usage: changepager verdict ID [--wait] [options]

Asks the canary gate (GET /v1/deploys/ID/verdict) whether the rollout ID belongs to is healthy.
Exit status: 0 healthy, 1 failing or rolled back, 2 still pending (without --wait) or timed out (with --wait),
3 the question could not be asked (bad arguments, unknown id, refused token).

  --url URL            changepager's address   (else CHANGEPAGER_URL, else http://127.0.0.1:8080)
  --token TOKEN        API token               (else CHANGEPAGER_TOKEN)
  --id ID              the deploy event id (or give it as the first argument)
  --observe DURATION   how long to watch after the latest stage (default PT30M)
  --settle DURATION    extra wait for alerts still on their way (default PT0S; your group_interval is a good value)
  --wait               poll until healthy or failing
  --timeout DURATION   give up waiting after this long (default: observe + settle + PT5M)
  --interval DURATION  how often to ask while pending (default PT30S)
  --json               print the last answer as JSON`;

const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  id: { type: 'string' },
  observe: { type: 'string' },
  settle: { type: 'string' },
  wait: { type: 'boolean' },
  timeout: { type: 'string' },
  interval: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

// A rollout that was rolled back stops a pipeline like a failing one: it must not be promoted.
export const EXIT = { healthy: 0, failing: 1, rolled_back: 1, pending: 2, error: 3 } as const;

interface VerdictBody {
  verdict: 'pending' | 'healthy' | 'failing' | 'rolled_back';
  sentence: string;
  window: { decidedInSeconds: number };
  alerts: { fingerprint: string; alertname: string | null; startsAt: string; sentence: string }[];
  /** Absent from servers older than the metrics gate. */
  evidence?: { verdict: string; metrics: { name: string; class: string; sentence: string }[] } | null;
}

/** `changepager verdict ID [--wait]`: one line per change of state, the verdict's sentence, and an exit status. */
export async function runVerdict(argv: string[], io: CliIo): Promise<number> {
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: true });
  } catch (err) {
    io.stderr(`changepager verdict: ${(err as Error).message}\n\n${VERDICT_USAGE}\n`);
    return EXIT.error;
  }
  const v = parsed.values as {
    [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string;
  };
  if (v.help) {
    io.stdout(`${VERDICT_USAGE}\n`);
    return 0;
  }
  const problems: string[] = [];
  const ids = [...(v.id ? [v.id] : []), ...parsed.positionals];
  if (ids.length !== 1) problems.push('give exactly one deploy id (as --id or the first argument)');
  const target = endpoint(v, io.env, problems);
  const timing = waiting(v, problems);
  const id = ids[0];
  if (problems.length > 0 || id === undefined || timing === undefined) {
    io.stderr(`changepager verdict: ${usageProblems(problems)}\n(changepager verdict --help lists every option)\n`);
    return EXIT.error;
  }

  const path = `/v1/deploys/${encodeURIComponent(id)}/verdict?observe=${encodeURIComponent(timing.observe)}&settle=${encodeURIComponent(timing.settle)}`;
  const deadline = io.now() + timing.timeoutMs;
  let lastState: string | undefined;
  for (;;) {
    let answer: Answer | undefined;
    try {
      answer = await exchange(io, target, 'GET', path);
    } catch (err) {
      // The service restarting, or a network blip: worth asking again while there is time.
      if (!v.wait) {
        io.stderr(`changepager verdict: ${networkFailure(target, err)}\n`);
        return EXIT.error;
      }
      io.stderr(`changepager verdict: ${networkFailure(target, err)}; asking again\n`);
    }
    if (answer && answer.status !== 200 && !(v.wait && retryable(answer.status))) {
      io.stderr(`changepager verdict: ${describeFailure(answer)}\n`);
      return EXIT.error;
    }
    const body = answer?.status === 200 ? (answer.body as VerdictBody) : undefined;
    // Without --wait the one answer is the result, printed once on stdout; while waiting, each new state is
    // progress on stderr, and stdout gets only the final answer.
    if (body && (body.verdict !== 'pending' || !v.wait)) return finish(io, body, Boolean(v.json));
    if (body && body.verdict !== lastState) io.stderr(`${body.sentence}\n`);
    if (body) lastState = body.verdict;

    const left = deadline - io.now();
    if (left <= 0) {
      io.stderr(
        `changepager verdict: timed out after ${Math.round(timing.timeoutMs / 1000)} s; the rollout is still ${lastState ?? 'unknown'}\n`,
      );
      if (body && v.json) io.stdout(`${JSON.stringify(body, null, 2)}\n`);
      return EXIT.pending;
    }
    // Ask again at the interval, or as soon as the window can be decided, whichever comes first.
    const decidesIn = body ? Math.max(1000, body.window.decidedInSeconds * 1000) : timing.intervalMs;
    await io.sleep(Math.min(timing.intervalMs, decidesIn, left));
  }
}

function finish(io: CliIo, body: VerdictBody, json: boolean): number {
  if (json) io.stdout(`${JSON.stringify(body, null, 2)}\n`);
  else {
    io.stdout(`${body.verdict}: ${body.sentence}\n`);
    for (const a of body.alerts)
      io.stdout(`  - ${a.alertname ?? 'alert'} ${a.fingerprint} since ${a.startsAt}: ${a.sentence}\n`);
    for (const m of body.evidence?.metrics ?? []) io.stdout(`  * ${m.class}: ${m.sentence}\n`);
  }
  return EXIT[body.verdict];
}

function waiting(
  v: { observe?: string; settle?: string; timeout?: string; interval?: string },
  problems: string[],
): { observe: string; settle: string; timeoutMs: number; intervalMs: number } | undefined {
  const duration = (flag: string, text: string) => {
    const ms = durationMs(text);
    if (ms === undefined) problems.push(`--${flag} must be an ISO-8601 duration such as PT30M, not "${text}"`);
    return ms;
  };
  const observe = v.observe ?? 'PT30M';
  const settle = v.settle ?? 'PT0S';
  const observeMs = duration('observe', observe);
  const settleMs = duration('settle', settle);
  const timeoutMs = v.timeout ? duration('timeout', v.timeout) : undefined;
  const intervalMs = duration('interval', v.interval ?? 'PT30S');
  if (observeMs === undefined || settleMs === undefined || intervalMs === undefined) return undefined;
  if (v.timeout && timeoutMs === undefined) return undefined;
  return {
    observe,
    settle,
    timeoutMs: timeoutMs ?? observeMs + settleMs + 5 * 60_000,
    intervalMs: Math.max(1000, intervalMs),
  };
}
