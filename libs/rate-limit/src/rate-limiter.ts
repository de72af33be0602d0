import type { Principal } from '@app/auth';
import { ApiException } from '@app/http';
import { Inject, Injectable } from '@nestjs/common';
import { InjectThrottlerStorage } from '@nestjs/throttler';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Counter } from 'prom-client';
import { RateLimitOverrides } from './rate-limit-overrides';
import { RedisThrottlerStorage } from './redis-throttler.storage';
import { TIER_LIMITS, WINDOW_MS, clientOf } from './tiers';

const DECISIONS = ['allowed', 'limited', 'fallback'] as const;

/**
 * One rate-limit decision for a request (CONTRACT §6): the client's override, else its tier's
 * limit; the X-RateLimit-* headers and the IETF draft's RateLimit-Policy and RateLimit
 * (structured fields) on the response; a refusal is a RATE_LIMITED problem with Retry-After.
 * Each decision is counted in `rate_limit_decisions_total{tier,decision}`: allowed, limited, or
 * fallback (Redis could not decide; the instance's own limiter did).
 */
@Injectable()
export class RateLimiter {
  constructor(
    @InjectThrottlerStorage() private readonly storage: RedisThrottlerStorage,
    @Inject(RateLimitOverrides) private readonly overrides: RateLimitOverrides,
    @InjectMetric('rate_limit_decisions_total') private readonly decisions: Counter<string>,
  ) {
    // Every tier and decision is a series from the start, at 0, so that an alert on fallback
    // decisions has something to watch before Redis first fails.
    for (const tier of Object.keys(TIER_LIMITS)) {
      for (const decision of DECISIONS) this.decisions.inc({ tier, decision }, 0);
    }
  }

  async decide(
    request: FastifyRequest & { user?: Principal | null },
    reply: FastifyReply,
    windowMs = WINDOW_MS,
  ): Promise<void> {
    const client = clientOf(request);
    const limit = this.overrides.limitFor(client.identifier) ?? TIER_LIMITS[client.tier];
    const record = await this.storage.increment(`rate-limit:${client.identifier}`, windowMs, limit);
    const wait = record.isBlocked ? record.timeToBlockExpire : record.timeToExpire;
    const remaining = Math.max(0, limit - record.totalHits);
    reply.header('x-ratelimit-limit', String(limit));
    reply.header('x-ratelimit-remaining', String(remaining));
    reply.header('x-ratelimit-reset', String(Math.ceil(Date.now() / 1000) + wait));
    reply.header('ratelimit-policy', `"default";q=${limit};w=${Math.round(windowMs / 1000)}`);
    reply.header('ratelimit', `"default";r=${remaining};t=${wait}`);
    const decision =
      record.decidedBy === 'fallback' ? 'fallback' : record.isBlocked ? 'limited' : 'allowed';
    this.decisions.labels(client.tier, decision).inc();
    if (record.isBlocked) {
      throw new ApiException(
        'RATE_LIMITED',
        `Rate limit of ${limit} requests a minute reached; retry in ${wait} s.`,
        undefined,
        { 'retry-after': String(wait) },
      );
    }
  }
}
