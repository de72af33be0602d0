import { LRUCache } from 'lru-cache';

/** Clients the fallback remembers; past this the least recently seen is forgotten. */
export const FALLBACK_CLIENTS = 10_000;

interface Client {
  /** Start (ms) of the current fixed window. */
  start: number;
  current: number;
  previous: number;
  /** The last count Redis gave for this client, when, and what this instance admitted since. */
  redisCount: number;
  redisAt: number;
  sinceRedis: number;
}

export interface LocalDecision {
  admitted: boolean;
  count: number;
  /** ms until the count drops (roughly: this limiter estimates). */
  waitMs: number;
}

/**
 * The per-instance limiter used while Redis cannot decide: a weighted two-window counter per
 * client, in an LRU of FALLBACK_CLIENTS entries, so its memory is bounded whatever the number of
 * clients. It starts from what Redis last said of a client near its limit (observe()), so a
 * client Redis had just stopped is not let through again because Redis was slow for a moment.
 * Approximate, and per instance: during an outage a client can get up to its limit from each
 * instance. It exists so that an outage of Redis does not also remove every limit.
 */
export class FallbackLimiter {
  private readonly clients = new LRUCache<string, Client>({ max: FALLBACK_CLIENTS });

  get size(): number {
    return this.clients.size;
  }

  /** Redis counted `count` for this client at `now`. */
  observe(key: string, count: number, now: number, windowMs: number): void {
    const client = this.clientAt(key, now, windowMs);
    client.redisCount = count;
    client.redisAt = now;
    client.sinceRedis = 0;
  }

  decide(key: string, limit: number, windowMs: number, now = Date.now()): LocalDecision {
    const client = this.clientAt(key, now, windowMs);
    const elapsed = (now - client.start) / windowMs;
    const weighted = client.previous * (1 - elapsed) + client.current;
    // Redis's last count holds for a whole window: stricter than the sliding truth, never looser.
    const fromRedis = now - client.redisAt < windowMs ? client.redisCount + client.sinceRedis : 0;
    const estimate = Math.max(weighted, fromRedis);
    const admitted = estimate < limit;
    if (admitted) {
      client.current += 1;
      client.sinceRedis += 1;
    }
    return {
      admitted,
      count: Math.ceil(estimate) + (admitted ? 1 : 0),
      waitMs: client.start + windowMs - now,
    };
  }

  private clientAt(key: string, now: number, windowMs: number): Client {
    const start = now - (now % windowMs);
    let client = this.clients.get(key);
    if (!client) {
      client = { start, current: 0, previous: 0, redisCount: 0, redisAt: -Infinity, sinceRedis: 0 };
      this.clients.set(key, client);
    } else if (client.start !== start) {
      client.previous = start - client.start === windowMs ? client.current : 0;
      client.current = 0;
      client.start = start;
    }
    return client;
  }
}
