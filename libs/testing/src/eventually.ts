import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Reads until `done` holds or `withinMs` has passed, every `everyMs`; returns the last value read.
 */
export async function eventually<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  withinMs: number,
  everyMs = 10,
): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() >= deadline) return value;
    await sleep(everyMs);
  }
}
