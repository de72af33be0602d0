import { Inject, Injectable } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type Redis from 'ioredis';
import { FallbackLimiter } from './fallback-limiter';
import { SLIDING_WINDOW_LUA } from './sliding-window';

export const RATE_LIMIT_REDIS = Symbol('RATE_LIMIT_REDIS');
/** The longest a request waits for Redis's decision before the fallback decides (CONTRACT §6). */
export const DECISION_TIMEOUT_MS = 50;
/** After Redis failed a decision, it is left alone this long: no request waits on a dead Redis. */
export const PAUSE_AFTER_FAILURE_MS = 250;

/** @nestjs/throttler's storage record (which its index does not export), and who decided. */
export interface RateLimitRecord {
  totalHits: number;
  /** Seconds until a slot frees. */
  timeToExpire: number;
  isBlocked: boolean;
  /** Seconds until the client may retry (0 when admitted). */
  timeToBlockExpire: number;
  /** Redis, or this instance's fallback limiter. */
  decidedBy: 'redis' | 'fallback';
}

type SlidingWindow = (
  key: string,
  limit: number,
  windowMs: number,
  deadline: number,
) => Promise<[number, number, number, number]>;

/**
 * A ThrottlerStorage for @nestjs/throttler on Redis: one atomic script call per decision (see
 * sliding-window.ts), on a client that never queues (no offline queue, no retries) and gives up
 * after DECISION_TIMEOUT_MS. When Redis fails or is slow, the decision is the fallback limiter's,
 * and Redis is tried again PAUSE_AFTER_FAILURE_MS later.
 *
 * Each call carries a deadline on Redis's clock (our clock plus the offset measured on the last
 * answer), past which the script counts nothing: a call that timed out here and reaches Redis
 * later (a hung server resuming) does not count the request a second time.
 */
@Injectable()
export class RedisThrottlerStorage implements ThrottlerStorage {
  readonly fallback = new FallbackLimiter();
  private readonly slidingWindow: SlidingWindow;
  /** Redis's clock minus ours (ms), from the last answer; undefined before the first. */
  private clockOffset: number | undefined;
  private pausedUntil = 0;

  constructor(@Inject(RATE_LIMIT_REDIS) redis: Redis) {
    redis.defineCommand('taskhubSlidingWindow', { numberOfKeys: 1, lua: SLIDING_WINDOW_LUA });
    const command = (redis as unknown as { taskhubSlidingWindow: SlidingWindow })
      .taskhubSlidingWindow;
    this.slidingWindow = command.bind(redis);
  }

  async increment(key: string, ttl: number, limit: number): Promise<RateLimitRecord> {
    const now = Date.now();
    if (now >= this.pausedUntil) {
      try {
        const deadline =
          this.clockOffset === undefined ? 0 : now + this.clockOffset + DECISION_TIMEOUT_MS;
        const [admitted, count, waitMs, redisNow] = await this.slidingWindow(
          key,
          limit,
          ttl,
          deadline,
        );
        if (admitted >= 0) {
          this.clockOffset = redisNow - Date.now();
          return record(admitted === 1, count, waitMs, 'redis');
        }
      } catch {
        // Refused, timed out or broken: decided below, and Redis left alone for a moment.
      }
      this.pausedUntil = Date.now() + PAUSE_AFTER_FAILURE_MS;
    }
    const local = this.fallback.decide(key, limit, ttl, now);
    return record(local.admitted, local.count, local.waitMs, 'fallback');
  }
}

function record(
  admitted: boolean,
  count: number,
  waitMs: number,
  decidedBy: RateLimitRecord['decidedBy'],
): RateLimitRecord {
  const seconds = Math.max(1, Math.ceil(waitMs / 1000));
  return {
    totalHits: count,
    timeToExpire: seconds,
    isBlocked: !admitted,
    timeToBlockExpire: admitted ? 0 : seconds,
    decidedBy,
  };
}
