import { withTimeout } from '@app/redis';
import { Inject, Injectable } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type Redis from 'ioredis';
import { FallbackLimiter } from './fallback-limiter';
import { SLIDING_WINDOW_LUA } from './sliding-window';

export const RATE_LIMIT_REDIS = Symbol('RATE_LIMIT_REDIS');
/** The longest a request waits for Redis's decision before the fallback decides (CONTRACT §6). */
export const DECISION_TIMEOUT_MS = 50;
/**
 * After Redis failed a decision and has not answered anything for DECISION_TIMEOUT_MS (it is
 * down or hung, not merely busy), it is left alone this long: no request waits on a dead Redis.
 */
export const PAUSE_AFTER_FAILURE_MS = 250;
/** A clock-offset sample is trusted this long before a slower one may replace it. */
const OFFSET_SAMPLE_MS = 30_000;
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
 * sliding-window.ts), on a client that never queues (no offline queue, no retries), waited for
 * DECISION_TIMEOUT_MS at most. When Redis fails or is slow, the decision is the fallback
 * limiter's, and Redis is tried again PAUSE_AFTER_FAILURE_MS later.
 *
 * Each call carries a deadline on Redis's clock, past which the script counts nothing: a call
 * that timed out here and reaches Redis later (a hung server resuming) does not count the
 * request a second time. Redis's clock is estimated from the answer with the shortest round trip
 * (a slow answer, read late by a busy process, would make the estimate early and the deadlines
 * too short).
 */
@Injectable()
export class RedisThrottlerStorage implements ThrottlerStorage {
  readonly fallback = new FallbackLimiter();
  private readonly slidingWindow: SlidingWindow;
  /** Redis's clock minus ours (ms); undefined before the first answer. */
  private clockOffset: number | undefined;
  /** The round trip of the answer clockOffset came from, and when it was taken. */
  private offsetRtt = Infinity;
  private offsetTakenAt = 0;
  private pausedUntil = 0;
  /** When Redis last answered anything (ms): a busy Redis still answers, a hung one does not. */
  private lastAnswerAt = 0;

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
        const call = this.slidingWindow(key, limit, ttl, deadline);
        call.then(
          () => (this.lastAnswerAt = Date.now()),
          () => undefined,
        );
        const [admitted, count, waitMs, redisNow] = await withTimeout(call, DECISION_TIMEOUT_MS);
        // An answer in time that says "past the deadline" proves the offset wrong (a clock
        // stepped): take this sample whatever its round trip.
        if (admitted < 0) this.offsetRtt = Infinity;
        this.sampleClock(now, redisNow);
        if (admitted >= 0) {
          // Clients far from their limit are not worth remembering for the fallback.
          if (count * 2 >= limit) this.fallback.observe(key, count, now, ttl);
          return record(admitted === 1, count, waitMs, 'redis');
        }
      } catch {
        // Refused, broken or too slow: decided below.
      }
      if (Date.now() - this.lastAnswerAt > DECISION_TIMEOUT_MS) {
        this.pausedUntil = Date.now() + PAUSE_AFTER_FAILURE_MS;
      }
    }
    const local = this.fallback.decide(key, limit, ttl, now);
    return record(local.admitted, local.count, local.waitMs, 'fallback');
  }

  /** Keeps the offset of the fastest recent round trip: Redis answered within it. */
  private sampleClock(sentAt: number, redisNow: number): void {
    const receivedAt = Date.now();
    const rtt = receivedAt - sentAt;
    if (rtt <= this.offsetRtt || receivedAt - this.offsetTakenAt > OFFSET_SAMPLE_MS) {
      this.clockOffset = redisNow - (sentAt + rtt / 2);
      this.offsetRtt = rtt;
      this.offsetTakenAt = receivedAt;
    }
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
