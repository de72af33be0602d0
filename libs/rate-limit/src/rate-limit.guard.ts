import { ApiException } from '@app/http';
import type { Principal } from '@app/auth';
import { Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  ThrottlerGuard,
  type ThrottlerModuleOptions,
  type ThrottlerRequest,
} from '@nestjs/throttler';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Counter } from 'prom-client';
import { RateLimitOverrides } from './rate-limit-overrides';
import { RedisThrottlerStorage } from './redis-throttler.storage';
import { TIER_LIMITS, clientOf } from './tiers';

/**
 * @nestjs/throttler's guard, registered after the auth guard, so that it knows the caller. The
 * limit is the client's override, else its tier's (CONTRACT §6); every limited response carries
 * the X-RateLimit-* headers and the IETF draft's RateLimit-Policy and RateLimit (structured
 * fields); a refusal is a RATE_LIMITED problem with Retry-After. Each decision is counted in
 * `rate_limit_decisions_total{tier,decision}`: allowed, limited, or fallback (Redis could not
 * decide; the instance's own limiter did).
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() private readonly storage: RedisThrottlerStorage,
    reflector: Reflector,
    private readonly overrides: RateLimitOverrides,
    @InjectMetric('rate_limit_decisions_total') private readonly decisions: Counter<string>,
  ) {
    super(options, storage, reflector);
  }

  protected override async handleRequest({ context, ttl }: ThrottlerRequest): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest & { user?: Principal | null }>();
    const reply = http.getResponse<FastifyReply>();
    const client = clientOf(request);
    const limit = this.overrides.limitFor(client.identifier) ?? TIER_LIMITS[client.tier];
    const record = await this.storage.increment(`rate-limit:${client.identifier}`, ttl, limit);
    const wait = record.isBlocked ? record.timeToBlockExpire : record.timeToExpire;
    const remaining = Math.max(0, limit - record.totalHits);
    reply.header('x-ratelimit-limit', String(limit));
    reply.header('x-ratelimit-remaining', String(remaining));
    reply.header('x-ratelimit-reset', String(Math.ceil(Date.now() / 1000) + wait));
    reply.header('ratelimit-policy', `"default";q=${limit};w=${Math.round(ttl / 1000)}`);
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
    return true;
  }
}
