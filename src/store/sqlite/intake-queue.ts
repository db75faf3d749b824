// Alert intake's share of the database thread. The thread answers calls in the order they arrive, so in a storm a
// page's delivery (its claim, its page with members, its record) waited behind every notification of a hundred
// alerts sent to the thread before it, and pages of other services came late. Intake's calls (thread.ts says
// which, and how many alerts each carries) now wait here instead, on the service's side, while the thread holds
// BUDGET alerts' worth of them; every other call goes to the thread at once. The lightest waiting call goes
// first, so a single alert is not kept behind a storm's notifications either, and one that has waited OVERDUE_MS
// goes next whatever its weight, so that none waits forever.

export interface WaitingCall {
  /** The alerts the call carries. */
  weight: number;
  /** When it began waiting (ms, monotonic). */
  since: number;
}

/** Index of the waiting call (oldest first) that goes next: the oldest when overdue, else the lightest. */
export function nextCall(waiting: readonly WaitingCall[], now: number, overdueMs: number): number {
  const oldest = waiting[0];
  if (oldest === undefined || now - oldest.since >= overdueMs) return 0;
  let lightest = 0;
  waiting.forEach((call, k) => {
    if (call.weight < (waiting[lightest]?.weight ?? Number.POSITIVE_INFINITY)) lightest = k;
  });
  return lightest;
}

export class IntakeQueue {
  private readonly waiting: (WaitingCall & { start: () => void })[] = [];
  private inThread = 0;

  constructor(
    private readonly budget: number,
    private readonly overdueMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Runs `send` when its turn comes, and settles as it does. */
  run<T>(weight: number, send: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = () => {
        this.inThread += weight;
        const done = () => {
          this.inThread -= weight;
          this.pump();
        };
        // A send that throws instead of rejecting still settles its caller and gives its share back: otherwise
        // the throw would escape into whichever call's completion started this one, and that caller would hang.
        let sent: Promise<T>;
        try {
          sent = send();
        } catch (err) {
          sent = Promise.reject(err);
        }
        sent.then(
          (value) => {
            done();
            resolve(value);
          },
          (err: unknown) => {
            done();
            reject(err);
          },
        );
      };
      this.waiting.push({ weight, since: this.now(), start });
      this.pump();
    });
  }

  private pump(): void {
    while (this.waiting.length > 0) {
      const k = nextCall(this.waiting, this.now(), this.overdueMs);
      const call = this.waiting[k];
      // A call heavier than the budget goes alone; otherwise the thread holds at most the budget.
      if (!call || (this.inThread > 0 && this.inThread + call.weight > this.budget)) return;
      this.waiting.splice(k, 1);
      call.start();
    }
  }
}
