import { listen, withTimeout } from '@app/redis';
import { Logger } from '@nestjs/common';
import type Redis from 'ioredis';
import { coalesceAsync } from 'promise-coalesce';
import { ScopeTokens } from './scope-tokens';

/**
 * A scope's generation as this instance knows it: `r<n>` is generation n in Redis (the shared
 * level may be read and written under it); `l<n>` is known to this instance only (Redis is out of
 * reach, or this instance's own write has not reached Redis yet): the shared level is skipped.
 * Every cache key holds its scope's token, so a new token makes every older entry unreachable.
 */
export type Token = string;

/** Runs a Redis call through the redis circuit breaker: refused at once while it is open. */
export type RedisGuard = <T>(call: () => Promise<T>) => Promise<T>;

/** How long a Redis read or write on the request path may wait before the cache goes without. */
export const REDIS_WAIT_MS = 50;
/**
 * How long a write waits for its invalidation to reach Redis before it answers anyway (it keeps
 * trying in the background). Bounded, so a hung Redis slows a write by this much at most.
 */
export const WRITE_WAIT_MS = 250;
/**
 * How long an instance-only token lasts. Without the channel an instance hears no other
 * instance's writes: its in-process entries then outlive them by this much at most.
 */
export const LOCAL_TOKEN_TTL_MS = 1000;
const RETRY_MS = 1000;
const MAX_SCOPES = 100_000;

/**
 * Moves a scope to a new generation and announces it, atomically. A generation is never reused,
 * even after its key expired: a new one is at least Redis's clock in milliseconds. The key lives
 * as long as an entry can, so an expired generation has no entries left under it.
 */
const BUMP_LUA = `
local now = redis.call('TIME')
local floor = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local gen = tonumber(redis.call('GET', KEYS[1]) or '0') + 1
if gen < floor then gen = floor end
redis.call('SET', KEYS[1], gen, 'PX', ARGV[3])
redis.call('PUBLISH', ARGV[1], ARGV[2] .. ' ' .. gen)
return tostring(gen)
`;

type BumpingRedis = Redis & {
  cacheBump(key: string, channel: string, scope: string, lifetimeMs: number): Promise<string>;
};

const genKey = (scope: string): string => `cache:gen:${scope}`;
const genOf = (token: Token | undefined): number =>
  token !== undefined && token[0] === 'r' ? Number(token.slice(1)) : -1;

/**
 * The generations of cache scopes (one scope is one owner's resources of one kind, such as
 * `tasks:<userId>`), and the channel that carries them between instances. A write moves its scopes
 * to a new generation in Redis and publishes it; every instance adopts the newest generation it
 * hears of. When the subscription drops, or comes back, everything this instance knew is dropped
 * (`flushed`): messages may have been missed.
 */
export class Generations {
  private readonly logger = new Logger('Cache');
  private readonly tokens = new ScopeTokens(MAX_SCOPES, LOCAL_TOKEN_TTL_MS);
  /** Writes whose new generation has not reached Redis yet, by scope. */
  private readonly pending = new Map<string, number>();
  /** Of those, the ones that failed: retried every second. */
  private readonly failed = new Map<string, number>();
  /** Newest generation heard of while a read of the scope's generation was in flight. */
  private readonly heard = new Map<string, number>();
  private readonly redis: BumpingRedis;
  private listening = false;
  private stopped = false;
  /** Bumped on every flush: what was read from Redis before it is not kept. */
  private epoch = 0;
  private locals = 0;
  private retry: NodeJS.Timeout | undefined;
  private close: (() => void) | undefined;

  constructor(
    redis: Redis,
    private readonly channel: string,
    private readonly lifetimeMs: number,
    private readonly flushed: () => void,
    /** Distinguishes this instance's single-flight keys from another's in the same process. */
    private readonly instance: string,
    private readonly guard: RedisGuard,
  ) {
    if (!('cacheBump' in redis))
      redis.defineCommand('cacheBump', { numberOfKeys: 1, lua: BUMP_LUA });
    this.redis = redis as BumpingRedis;
  }

  start(): void {
    this.close = listen(this.redis, this.channel, {
      subscribed: () => this.flush(true),
      lost: () => {
        if (this.listening && !this.stopped) this.flush(false);
      },
      message: (message) => this.heardOf(message),
    });
  }

  stop(): void {
    this.stopped = true;
    this.close?.();
    clearInterval(this.retry);
  }

  /** The scope's token if this instance knows it: the hot path, no I/O. */
  known(scope: string): Token | undefined {
    return this.tokens.get(scope);
  }

  /** The scope's token, read from Redis when this instance does not know it. */
  resolve(scope: string): Token | Promise<Token> {
    const known = this.tokens.get(scope);
    if (known !== undefined) return known;
    if (!this.listening || this.pending.has(scope)) return this.local(scope);
    return coalesceAsync(`${this.instance}:gen:${scope}`, () => this.read(scope));
  }

  /**
   * Moves the scopes to new generations everywhere. This instance stops using what it cached for
   * them at once; the call waits WRITE_WAIT_MS at most for Redis, and keeps trying after that.
   */
  async bump(scopes: string[]): Promise<void> {
    for (const scope of scopes) {
      this.pending.set(scope, (this.pending.get(scope) ?? 0) + 1);
      this.tokens.delete(scope);
      this.local(scope);
    }
    await withTimeout(Promise.all(scopes.map((scope) => this.send(scope, 1))), WRITE_WAIT_MS).catch(
      () => undefined,
    );
  }

  private async read(scope: string): Promise<Token> {
    const epoch = this.epoch;
    this.heard.set(scope, -1);
    const read = this.guard(() => this.redis.get(genKey(scope)));
    const stored = await withTimeout(read, REDIS_WAIT_MS).then(
      (value) => Number(value ?? 0),
      () => undefined,
    );
    const heard = this.heard.get(scope) ?? -1;
    this.heard.delete(scope);
    if (stored === undefined || epoch !== this.epoch || this.pending.has(scope)) {
      return this.local(scope);
    }
    return this.adopt(scope, Math.max(stored, heard));
  }

  /** Sends `units` writes' bump of one scope; on failure leaves them to the retry timer. */
  private async send(scope: string, units: number): Promise<void> {
    try {
      await this.guard(() =>
        this.redis.cacheBump(genKey(scope), this.channel, scope, this.lifetimeMs),
      );
    } catch {
      this.failed.set(scope, (this.failed.get(scope) ?? 0) + units);
      this.retry ??= setInterval(() => this.retryFailed(), RETRY_MS).unref();
      return;
    }
    const left = (this.pending.get(scope) ?? units) - units;
    if (left > 0) {
      this.pending.set(scope, left);
    } else {
      this.pending.delete(scope);
      // Read the generation from Redis again: messages heard meanwhile were not adopted.
      this.tokens.delete(scope);
    }
  }

  private retryFailed(): void {
    const failed = [...this.failed];
    this.failed.clear();
    if (failed.length === 0) {
      clearInterval(this.retry);
      this.retry = undefined;
      return;
    }
    for (const [scope, units] of failed) void this.send(scope, units);
  }

  private heardOf(message: string): void {
    const space = message.lastIndexOf(' ');
    const scope = message.slice(0, space);
    const gen = Number(message.slice(space + 1));
    if (space <= 0 || !Number.isSafeInteger(gen)) return;
    if (this.heard.has(scope)) this.heard.set(scope, Math.max(this.heard.get(scope) ?? -1, gen));
    if (this.pending.has(scope)) {
      // Another instance wrote too: what this one cached since its own write is stale as well.
      this.tokens.delete(scope);
      this.local(scope);
    } else if (this.tokens.has(scope)) {
      this.adopt(scope, gen);
    }
  }

  /** The newer of the known and the given generation. */
  private adopt(scope: string, gen: number): Token {
    const current = this.tokens.get(scope);
    if (current !== undefined && genOf(current) >= gen) return current;
    const token = `r${gen}`;
    this.tokens.set(scope, token);
    return token;
  }

  private local(scope: string): Token {
    const current = this.tokens.get(scope);
    if (current !== undefined && current[0] === 'l') return current;
    const token = `l${++this.locals}`;
    this.tokens.set(scope, token);
    return token;
  }

  private flush(listening: boolean): void {
    if (listening && !this.listening) this.logger.log('Cache invalidations are heard again');
    if (!listening) {
      this.logger.warn(
        `Cache invalidations cannot be heard: in-process entries last ${LOCAL_TOKEN_TTL_MS} ms`,
      );
    }
    this.listening = listening;
    this.epoch += 1;
    this.tokens.clear();
    this.flushed();
  }
}
