import { describe, expect, it } from 'vitest';
import { IntakeQueue, nextCall } from '../../src/store/sqlite/intake-queue.js';

// Intake's turns for the database thread: which waiting call goes next, and how many alerts' worth the thread
// holds at once. Each "call" here is a promise the test settles, standing in for the thread's answer.

function harness(budget: number, overdueMs = 100) {
  let clock = 0;
  const queue = new IntakeQueue(budget, overdueMs, () => clock);
  const started: string[] = [];
  const answers = new Map<string, { resolve: (v: string) => void; reject: (e: Error) => void }>();
  const submit = (name: string, weight: number) =>
    queue.run(
      weight,
      () =>
        new Promise<string>((resolve, reject) => {
          started.push(name);
          answers.set(name, { resolve, reject });
        }),
    );
  const answer = async (name: string) => {
    answers.get(name)?.resolve(`${name} answered`);
    await new Promise((r) => setImmediate(r));
  };
  const fail = async (name: string) => {
    answers.get(name)?.reject(new Error(`${name} failed`));
    await new Promise((r) => setImmediate(r));
  };
  return { submit, answer, fail, started, tick: (ms: number) => (clock += ms) };
}

describe('intake calls taking turns for the database thread', () => {
  it('lets a single alert go before a storm notification that was waiting first', async () => {
    const q = harness(100);
    const storm1 = q.submit('storm-1', 100);
    q.submit('storm-2', 100);
    const single = q.submit('single', 1);
    expect(q.started).toEqual(['storm-1']);
    await q.answer('storm-1');
    await expect(storm1).resolves.toBe('storm-1 answered');
    expect(q.started).toEqual(['storm-1', 'single']);
    await q.answer('single');
    await expect(single).resolves.toBe('single answered');
    expect(q.started).toEqual(['storm-1', 'single', 'storm-2']);
  });

  it('sends light calls together up to the budget, and a call heavier than the budget alone', async () => {
    const q = harness(100);
    for (let i = 0; i < 150; i++) q.submit(`one-${i}`, 1);
    expect(q.started).toHaveLength(100);
    await q.answer('one-0');
    expect(q.started).toHaveLength(101);
    const q2 = harness(100);
    q2.submit('huge', 500);
    q2.submit('one', 1);
    expect(q2.started).toEqual(['huge']);
    await q2.answer('huge');
    expect(q2.started).toEqual(['huge', 'one']);
  });

  it('sends a call passed over for the overdue time next, and nothing lighter ahead of it', async () => {
    const q = harness(100, 100);
    q.submit('first', 60);
    q.submit('heavy', 60);
    q.tick(50);
    q.submit('light-1', 1);
    expect(q.started).toEqual(['first', 'light-1']);
    q.tick(60); // heavy has now waited 110 ms
    q.submit('light-2', 1);
    expect(q.started).toEqual(['first', 'light-1']);
    await q.answer('first');
    await q.answer('light-1');
    expect(q.started).toEqual(['first', 'light-1', 'heavy', 'light-2']);
  });

  it('gives a failed call’s share back and tells its caller', async () => {
    const q = harness(100);
    const failing = q.submit('failing', 100);
    q.submit('next', 100);
    const heard = expect(failing).rejects.toThrow('failing failed');
    await q.fail('failing');
    await heard;
    expect(q.started).toEqual(['failing', 'next']);
  });

  it('settles a call whose send throws, and gives its share back to the next', async () => {
    const queue = new IntakeQueue(100, 100, () => 0);
    let release = () => {};
    const first = queue.run(100, () => new Promise<string>((resolve) => (release = () => resolve('first'))));
    const throwing = queue.run(100, () => {
      throw new Error('cannot send');
    });
    const heard = expect(throwing).rejects.toThrow('cannot send');
    const after = queue.run(100, async () => 'after');
    release();
    await expect(first).resolves.toBe('first');
    await heard;
    await expect(after).resolves.toBe('after');
  });

  it('picks the oldest when it is overdue, else the lightest, the earlier of equals', () => {
    const waiting = [
      { weight: 100, since: 0 },
      { weight: 1, since: 10 },
      { weight: 1, since: 20 },
    ];
    expect(nextCall(waiting, 50, 100)).toBe(1);
    expect(nextCall(waiting, 100, 100)).toBe(0);
    expect(nextCall([], 0, 100)).toBe(0);
  });
});
