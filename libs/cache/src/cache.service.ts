import { AppConfig, InjectConfig } from '@app/config';
import { InjectRedis, withTimeout } from '@app/redis';
import { Breakers } from '@app/resilience';
import { HttpException, Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import { Cache, createCache } from 'cache-manager';
import { redisInsStore } from 'cache-manager-ioredis-yet';
import type Redis from 'ioredis';
import { LRUCache } from 'lru-cache';
import { randomUUID } from 'node:crypto';
import type { Counter } from 'prom-client';
import { coalesceAsync } from 'promise-coalesce';
import { Generations, REDIS_WAIT_MS, RedisGuard, Token } from './generations';

/** Where a response came from (the X-Cache header, CONTRACT §7). */
export type CacheOutcome = 'hit-local' | 'hit-redis' | 'miss' | 'stale' | 'bypass';

export interface CacheRead<T> {
  value: T;
  outcome: CacheOutcome;
}

interface LocalEntry {
  value: unknown;
  /** ms: served as is until then. */
  freshUntil: number;
  /** ms: served when loading fails, until then. */
  staleUntil: number;
}

/** What the shared level holds: the value and when it was loaded (ms). */
interface SharedEntry {
  v: unknown;
  t: number;
}

type Level = 'local' | 'redis';
type Result = 'hit' | 'miss' | 'stale' | 'bypass';

/** A failure worth serving a stale value for: the database, not the request. */
const isDependencyFailure = (error: unknown): boolean =>
  !(error instanceof HttpException) || error.getStatus() >= 500;

/**
 * A two-level read cache: a bounded in-process LRU (entries and bytes) in front of Redis, shared
 * by every instance through cache-manager. Entries belong to a scope (one owner's resources of one
 * kind), and a write moves its scopes to a new generation (see Generations), so lists and items
 * are invalidated without listing keys. Concurrent misses of one key load it once per instance;
 * when loading fails, the last good value is served for CACHE_STALE_SECONDS.
 *
 * The in-process level is lru-cache itself rather than cache-manager's memory store: the store
 * wraps the same lru-cache in a promise and a deep clone, and a hit here must cost no more than a
 * map lookup. cache-manager's multiCaching is not used either: it cannot say which level answered
 * (X-Cache) and has no stale-if-error.
 */
@Injectable()
export class CacheService implements OnModuleInit, OnApplicationShutdown {
  private readonly local: LRUCache<string, LocalEntry>;
  private readonly shared: Cache;
  private readonly generations: Generations;
  private readonly instance = randomUUID();
  private readonly counts: Record<Level, Record<Result, Counter.Internal>>;
  private readonly settings: AppConfig['cache'];
  /** Every Redis call goes through the redis breaker: while it is open, none waits on Redis. */
  private readonly guard: RedisGuard;

  constructor(
    @InjectConfig() config: AppConfig,
    @InjectRedis() redis: Redis,
    @InjectMetric('cache_requests_total') requests: Counter<string>,
    breakers: Breakers,
  ) {
    this.settings = config.cache;
    this.guard = (call) => breakers.run('redis', call);
    const { ttlMs, staleMs, localMaxEntries, localMaxBytes } = config.cache;
    this.local = new LRUCache({ max: localMaxEntries, maxSize: localMaxBytes });
    this.shared = createCache(redisInsStore(redis, { ttl: ttlMs + staleMs }));
    this.generations = new Generations(
      redis,
      `${config.redis.keyPrefix}cache:invalidate`,
      ttlMs + staleMs,
      () => this.local.clear(),
      this.instance,
      this.guard,
    );
    const counter = (level: Level): Record<Result, Counter.Internal> => {
      const results: Result[] = ['hit', 'miss', 'stale', 'bypass'];
      // Each a series from the start, at 0 (a hit ratio is defined before the first miss).
      for (const result of results) requests.inc({ level, result }, 0);
      return Object.fromEntries(
        results.map((result) => [result, requests.labels(level, result)]),
      ) as Record<Result, Counter.Internal>;
    };
    this.counts = { local: counter('local'), redis: counter('redis') };
  }

  onModuleInit(): void {
    if (this.settings.enabled) this.generations.start();
  }

  onApplicationShutdown(): void {
    this.generations.stop();
  }

  /**
   * The value of `key` in `scope`: from this instance when it holds it fresh (synchronously: no
   * promise on the hot path), else from Redis, else from `load`.
   */
  read<T>(
    scope: string,
    key: string,
    load: () => Promise<T>,
  ): CacheRead<T> | Promise<CacheRead<T>> {
    if (!this.settings.enabled) return load().then((value) => ({ value, outcome: 'bypass' }));
    const token = this.generations.known(scope);
    if (token !== undefined) {
      const entry = this.local.get(`${scope}:${token}:${key}`);
      if (entry !== undefined && Date.now() < entry.freshUntil) {
        this.counts.local.hit.inc();
        return { value: entry.value as T, outcome: 'hit-local' };
      }
    }
    this.counts.local.miss.inc();
    return this.readThrough(scope, key, load);
  }

  /** Makes what the owner's writes changed unreachable on every instance (see Generations). */
  invalidate(ownerId: string, resources: readonly string[]): Promise<void> {
    if (!this.settings.enabled) return Promise.resolve();
    return this.generations.bump(resources.map((resource) => `${resource}:${ownerId}`));
  }

  private async readThrough<T>(
    scope: string,
    key: string,
    load: () => Promise<T>,
  ): Promise<CacheRead<T>> {
    const token = await this.generations.resolve(scope);
    const full = `${scope}:${token}:${key}`;
    // One load per key and instance at a time; the others wait for it (single-flight).
    return coalesceAsync(`${this.instance}:${full}`, () => this.fill<T>(full, token, load));
  }

  private async fill<T>(full: string, token: Token, load: () => Promise<T>): Promise<CacheRead<T>> {
    const now = Date.now();
    const entry = this.local.get(full);
    if (entry !== undefined && now < entry.freshUntil) {
      return { value: entry.value as T, outcome: 'hit-local' };
    }
    // The freshest value to fall back on if loading fails.
    let stale: { value: unknown; until: number; level: Level } | undefined =
      entry !== undefined && now < entry.staleUntil
        ? { value: entry.value, until: entry.staleUntil, level: 'local' }
        : undefined;
    let shared = token[0] === 'r';
    if (shared) {
      try {
        const found = await withTimeout(
          this.guard(() => this.shared.get<SharedEntry>(`cache:${full}`)),
          REDIS_WAIT_MS,
        );
        if (found !== undefined) {
          const freshUntil = found.t + this.settings.ttlMs;
          if (now < freshUntil) {
            this.counts.redis.hit.inc();
            this.keepLocally(full, found.v, now, freshUntil, freshUntil + this.settings.staleMs);
            return { value: found.v as T, outcome: 'hit-redis' };
          }
          const until = freshUntil + this.settings.staleMs;
          if (now < until && (stale === undefined || until > stale.until)) {
            stale = { value: found.v, until, level: 'redis' };
          }
        }
        this.counts.redis.miss.inc();
      } catch {
        // Redis is slow or out of reach: go without it for this request.
        shared = false;
      }
    }
    if (!shared) this.counts.redis.bypass.inc();
    let value: T;
    try {
      value = await load();
    } catch (error) {
      if (stale === undefined || !isDependencyFailure(error)) throw error;
      this.counts[stale.level].stale.inc();
      return { value: stale.value as T, outcome: 'stale' };
    }
    const loaded = Date.now();
    const freshUntil = loaded + this.settings.ttlMs;
    this.keepLocally(full, value, loaded, freshUntil, freshUntil + this.settings.staleMs);
    if (shared) {
      const stored: SharedEntry = { v: value, t: loaded };
      // Not awaited: the response does not wait for Redis. A failure only costs a later miss.
      this.guard(() => this.shared.set(`cache:${full}`, stored)).catch(() => undefined);
    }
    return { value, outcome: shared ? 'miss' : 'bypass' };
  }

  private keepLocally(
    full: string,
    value: unknown,
    now: number,
    freshUntil: number,
    staleUntil: number,
  ): void {
    const size = JSON.stringify(value)?.length ?? 0;
    this.local.set(
      full,
      { value, freshUntil: Math.min(freshUntil, now + this.settings.localTtlMs), staleUntil },
      { size: Math.max(size, 1) },
    );
  }
}
