import { withTimeout } from '@app/redis';
import { Inject, Injectable } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type Redis from 'ioredis';
import { FallbackLimiter } from './fallback-limiter';
import { randomUUID } from 'node:crypto';
import { BUCKETS, SLIDING_WINDOW_LUA } from './sliding-window';

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
  want: number,
  instance: string,
  returnSlot: number,
  returnCount: number,
) => Promise<[number, number, number, number, number, number, number]>;

/** A client at this rate or more, on this instance, is leased for its rate, not its demand. */
export const HOT_PER_SECOND = 1000;
/** The most admissions one call takes in advance. */
export const MAX_LEASE = 10_000;
/** Clients whose leases and rates an instance keeps; past this the oldest is forgotten. */
const MAX_CLIENTS = 10_000;

/**
 * Admissions Redis counted for this instance in advance, in one slot of the client's window.
 * They may be spent only until that slot ends (see sliding-window.ts); times are
 * performance.now() ms, so a step of the wall clock cannot stretch them.
 */
interface Lease {
  limit: number;
  windowMs: number;
  slot: number;
  permits: number;
  /** The client's count in Redis after the grant: every permit counted. */
  count: number;
  /** When the oldest slot frees (for the headers). */
  freesAt: number;
  /** Spendable before this. */
  until: number;
}

/** Redis refused the client: so is every request until its slot ends. */
interface Refusal {
  limit: number;
  windowMs: number;
  count: number;
  until: number;
  retryAt: number;
}

interface ClientState {
  lease?: Lease;
  refusal?: Refusal;
  /** The call to Redis in flight for this client, which the others wait for. */
  asking?: Promise<RateLimitRecord | undefined>;
  waiting: number;
  /** Permits of an expired lease, given back with the next call. */
  giveBack?: { slot: number; count: number; windowMs: number };
  /** Decisions for this client here, in the current second (of performance.now()) and the last. */
  second: number;
  seen: number;
  seenBefore: number;
}

/**
 * A ThrottlerStorage for @nestjs/throttler on Redis: atomic script calls (see sliding-window.ts),
 * on a client that never queues (no offline queue, no retries), waited for DECISION_TIMEOUT_MS at
 * most. When Redis fails or is slow, the decision is the fallback limiter's, and Redis is tried
 * again PAUSE_AFTER_FAILURE_MS later.
 *
 * Leases, so that a busy client does not cost a Redis round trip per request: while a call for a
 * client is in flight, that client's other requests wait for it, and the next call asks for one
 * admission for each of them (a client at HOT_PER_SECOND or more asks for what its rate will
 * spend in the rest of the slot). Redis grants no more than the limit leaves, split between the
 * instances taking some; the permits are spent here until their slot ends, and what is left is
 * given back with the next call. A client that sends one request at a time, as most do, gets one
 * call per request, as before leases. A refusal holds until the slot ends, so a client over its
 * limit costs one call per slot. No rolling window ever admits more than the limit; the
 * Remaining header counts what other instances hold unspent as used, so it is never above
 * what is left, and exact whenever a request asked Redis.
 *
 * Each call carries a deadline on Redis's clock, past which the script counts nothing: a call
 * that timed out here and reaches Redis later (a hung server resuming) does not count the
 * request a second time, nor give back permits twice. Redis's clock is estimated from the answer
 * with the shortest round trip (a slow answer, read late by a busy process, would make the
 * estimate early and the deadlines too short).
 */
@Injectable()
export class RedisThrottlerStorage implements ThrottlerStorage {
  readonly fallback = new FallbackLimiter();
  private readonly slidingWindow: SlidingWindow;
  private readonly instance = randomUUID().slice(0, 8);
  private readonly clients = new Map<string, ClientState>();
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
    const state = this.stateOf(key);
    for (;;) {
      const now = performance.now();
      const lease = state.lease;
      if (lease && (lease.limit !== limit || lease.windowMs !== ttl || now >= lease.until)) {
        this.expire(state, lease);
      } else if (lease) {
        lease.permits -= 1;
        if (lease.permits === 0) state.lease = undefined;
        return record(true, lease.count - lease.permits, lease.freesAt - now, 'redis');
      }
      const refusal = state.refusal;
      if (refusal && refusal.limit === limit && refusal.windowMs === ttl && now < refusal.until) {
        return record(false, refusal.count, refusal.retryAt - now, 'redis');
      }
      state.refusal = undefined;
      if (!state.asking) break;
      state.waiting += 1;
      const answered = await state.asking;
      state.waiting -= 1;
      // Redis could not decide the call waited for: no second wait, the fallback decides.
      if (!answered) return this.fallBack(key, ttl, limit);
    }
    const asking = this.ask(key, state, ttl, limit);
    state.asking = asking;
    let decided: RateLimitRecord | undefined;
    try {
      // Resumes before the waiters (it awaited first), so they find the call over.
      decided = await asking;
    } finally {
      if (state.asking === asking) state.asking = undefined;
    }
    return decided ?? this.fallBack(key, ttl, limit);
  }

  private fallBack(key: string, ttl: number, limit: number): RateLimitRecord {
    const local = this.fallback.decide(key, limit, ttl, Date.now());
    return record(local.admitted, local.count, local.waitMs, 'fallback');
  }

  /**
   * One call to Redis for this client: the caller's decision, and the lease of the permits
   * beyond it. Undefined when Redis could not decide.
   */
  private async ask(
    key: string,
    state: ClientState,
    ttl: number,
    limit: number,
  ): Promise<RateLimitRecord | undefined> {
    const now = Date.now();
    if (now < this.pausedUntil) return undefined;
    const giveBack = state.giveBack?.windowMs === ttl ? state.giveBack : undefined;
    // Given back once, whatever happens: given back twice would admit more than the limit.
    state.giveBack = undefined;
    try {
      const deadline =
        this.clockOffset === undefined ? 0 : now + this.clockOffset + DECISION_TIMEOUT_MS;
      const sentAt = performance.now();
      const call = this.slidingWindow(
        key,
        limit,
        ttl,
        deadline,
        this.want(state, ttl),
        this.instance,
        giveBack?.slot ?? 0,
        giveBack?.count ?? 0,
      );
      call.then(
        () => (this.lastAnswerAt = Date.now()),
        () => undefined,
      );
      const [admitted, count, waitMs, redisNow, granted, slot, slotLeftMs] = await withTimeout(
        call,
        DECISION_TIMEOUT_MS,
      );
      // An answer in time that says "past the deadline" proves the offset wrong (a clock
      // stepped): take this sample whatever its round trip.
      if (admitted < 0) this.offsetRtt = Infinity;
      this.sampleClock(now, redisNow);
      if (admitted >= 0) {
        const receivedAt = performance.now();
        // Clients far from their limit are not worth remembering for the fallback.
        if (count * 2 >= limit) this.fallback.observe(key, count, now, ttl);
        // Redis read its clock after we sent: the slot ends no sooner than this, here.
        const until = sentAt + slotLeftMs;
        if (admitted === 0) {
          state.refusal = { limit, windowMs: ttl, count, until, retryAt: receivedAt + waitMs };
          return record(false, count, waitMs, 'redis');
        }
        if (granted > 1) {
          const freesAt = receivedAt + waitMs;
          state.lease = { limit, windowMs: ttl, slot, permits: granted - 1, count, freesAt, until };
        }
        return record(true, count - (granted - 1), waitMs, 'redis');
      }
    } catch {
      // Refused, broken or too slow: the fallback decides.
    }
    if (Date.now() - this.lastAnswerAt > DECISION_TIMEOUT_MS) {
      this.pausedUntil = Date.now() + PAUSE_AFTER_FAILURE_MS;
    }
    return undefined;
  }

  /**
   * How many admissions to ask for: one for this request and one for each waiting; for a hot
   * client, what its rate here will spend in what is left of the slot.
   */
  private want(state: ClientState, windowMs: number): number {
    let want = 1 + state.waiting;
    if (state.seenBefore >= HOT_PER_SECOND && this.clockOffset !== undefined) {
      const size = Math.ceil(windowMs / BUCKETS);
      const left = size - ((Date.now() + this.clockOffset) % size);
      want = Math.max(want, Math.ceil((state.seenBefore * left) / 1000));
    }
    return Math.min(want, MAX_LEASE);
  }

  /** A lease that can no longer be spent: what is left of it goes back with the next call. */
  private expire(state: ClientState, lease: Lease): void {
    state.lease = undefined;
    state.giveBack = { slot: lease.slot, count: lease.permits, windowMs: lease.windowMs };
  }

  /** The client's state, with this decision counted for its rate. */
  private stateOf(key: string): ClientState {
    const second = Math.floor(performance.now() / 1000);
    let state = this.clients.get(key);
    if (!state) {
      state = { waiting: 0, second, seen: 0, seenBefore: 0 };
      this.clients.set(key, state);
      if (this.clients.size > MAX_CLIENTS) {
        this.clients.delete(this.clients.keys().next().value as string);
      }
    } else if (state.second !== second) {
      state.seenBefore = second - state.second === 1 ? state.seen : 0;
      state.seen = 0;
      state.second = second;
    }
    state.seen += 1;
    return state;
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
