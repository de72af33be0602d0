/**
 * `promise`, or a rejection once `ms` have passed without it: a caller never waits unbounded.
 * The check waits for the next turn of the event loop after the timer fires (setImmediate runs
 * after the I/O phase): a busy process runs expired timers before it reads its sockets, and would
 * otherwise give up on replies that arrived in time and are waiting to be read.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(
      () =>
        setImmediate(() => {
          if (settled) return;
          settled = true;
          reject(new Error(`timed out after ${ms} ms`));
        }),
      ms,
    );
    promise.then(
      (value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
