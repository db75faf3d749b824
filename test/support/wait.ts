/** Polls until `check` holds; the error shows what was seen instead. */
export async function eventually<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The waits of a recording stand-in: `waitFor` resolves once `holds()` does, checked again at every `notify()`
 * (the stand-in calls it after recording a request); on timeout the error says what was recorded instead.
 */
export function conditionWaiters(name: string, recorded: () => string) {
  const waiters = new Set<() => void>();
  return {
    notify(): void {
      for (const w of [...waiters]) w();
    },
    waitFor(holds: () => boolean, timeoutMs = 5000): Promise<void> {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!holds()) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${name}: condition not met in ${timeoutMs} ms; calls: ${recorded()}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}
