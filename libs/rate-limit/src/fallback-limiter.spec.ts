import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { FALLBACK_CLIENTS, FallbackLimiter } from './fallback-limiter';

/**
 * A full garbage collection, so that heapUsed counts what is kept, not garbage a collection has
 * yet to free (how much of that waits depends on the young generation's size: Node 24's is larger).
 */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

describe('FallbackLimiter', () => {
  const WINDOW = 60_000;

  it('limits each client to its limit within a window', () => {
    const limiter = new FallbackLimiter();
    const now = 1_800_000_000_000;
    const decisions = Array.from({ length: 8 }, () => limiter.decide('a', 5, WINDOW, now));
    expect(decisions.map((d) => d.admitted)).toEqual([
      true,
      true,
      true,
      true,
      true,
      false,
      false,
      false,
    ]);
    expect(limiter.decide('b', 5, WINDOW, now).admitted).toBe(true);
    expect(decisions[7].waitMs).toBeGreaterThan(0);
    expect(decisions[7].waitMs).toBeLessThanOrEqual(WINDOW);
  });

  it('weighs the previous window, so a window edge does not double the limit', () => {
    const limiter = new FallbackLimiter();
    const start = 1_800_000_000_000 - (1_800_000_000_000 % WINDOW);
    for (let i = 0; i < 10; i += 1) limiter.decide('a', 10, WINDOW, start + WINDOW - 1000);
    // 1 s into the next window, the previous one still weighs 59/60 of its 10 (9.8): one more.
    const edge = Array.from({ length: 3 }, () =>
      limiter.decide('a', 10, WINDOW, start + WINDOW + 1000),
    );
    expect(edge.map((d) => d.admitted)).toEqual([true, false, false]);
    // Half a window later it weighs 5, plus the 1 of this window: 4 more.
    const later = Array.from({ length: 6 }, () =>
      limiter.decide('a', 10, WINDOW, start + WINDOW + WINDOW / 2),
    );
    expect(later.filter((d) => d.admitted)).toHaveLength(4);
  });

  it("starts from Redis's last count for a client near its limit", () => {
    const limiter = new FallbackLimiter();
    const now = 1_800_000_000_000;
    limiter.observe('a', 9, now, WINDOW);
    expect(limiter.decide('a', 10, WINDOW, now + 10).admitted).toBe(true);
    expect(limiter.decide('a', 10, WINDOW, now + 20).admitted).toBe(false);
    // What Redis said holds for a window, no longer.
    expect(limiter.decide('a', 10, WINDOW, now + WINDOW + 1).admitted).toBe(true);
  });

  it('remembers at most FALLBACK_CLIENTS clients, however many come (bounded memory)', () => {
    const limiter = new FallbackLimiter();
    const now = 1_800_000_000_000;
    collectGarbage();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 100_000; i += 1)
      limiter.decide(`ip:10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, 100, WINDOW, now);
    expect(limiter.size).toBe(FALLBACK_CLIENTS);
    collectGarbage();
    // 10 000 entries keep ~2.5 MB; 100 000 would keep ~25 MB.
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(8 * 1024 * 1024);
    // The most recent clients are the ones kept.
    expect(limiter.decide('ip:10.1.134.159', 1, WINDOW, now).admitted).toBe(false);
  });
});
