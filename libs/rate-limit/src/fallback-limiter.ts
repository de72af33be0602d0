import { LRUCache } from 'lru-cache';

/** Clients the fallback remembers; past this the least recently seen is forgotten. */
export const FALLBACK_CLIENTS = 10_000;

interface Window {
  /** Start (ms) of the current fixed window. */
  start: number;
  current: number;
  previous: number;
}

export interface LocalDecision {
  admitted: boolean;
  count: number;
  /** ms until the count drops (roughly: this limiter estimates). */
  waitMs: number;
}

/**
 * The per-instance limiter used while Redis cannot decide: a weighted two-window counter per
 * client (three numbers), in an LRU of FALLBACK_CLIENTS entries, so its memory is bounded
 * whatever the number of clients. Approximate, and per instance: with N instances a client can
 * get up to N times its limit until Redis is back. It exists so that an outage of Redis does not
 * also remove every limit.
 */
export class FallbackLimiter {
  private readonly clients = new LRUCache<string, Window>({ max: FALLBACK_CLIENTS });

  get size(): number {
    return this.clients.size;
  }

  decide(key: string, limit: number, windowMs: number, now = Date.now()): LocalDecision {
    const start = now - (now % windowMs);
    let window = this.clients.get(key);
    if (!window) {
      window = { start, current: 0, previous: 0 };
      this.clients.set(key, window);
    } else if (window.start !== start) {
      window.previous = start - window.start === windowMs ? window.current : 0;
      window.current = 0;
      window.start = start;
    }
    const elapsed = (now - start) / windowMs;
    const estimate = window.previous * (1 - elapsed) + window.current;
    const admitted = estimate < limit;
    if (admitted) window.current += 1;
    return {
      admitted,
      count: Math.ceil(estimate) + (admitted ? 1 : 0),
      waitMs: start + windowMs - now,
    };
  }
}
