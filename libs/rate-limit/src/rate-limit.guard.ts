import type { Principal } from '@app/auth';
import { Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  ThrottlerGuard,
  type ThrottlerModuleOptions,
  type ThrottlerRequest,
  type ThrottlerStorage,
} from '@nestjs/throttler';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RateLimiter } from './rate-limiter';

/**
 * @nestjs/throttler's guard (its @SkipThrottle() and options), registered after the auth guard
 * so that it knows the caller; the decision is RateLimiter's, per client rather than per route.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    reflector: Reflector,
    private readonly limiter: RateLimiter,
  ) {
    super(options, storage, reflector);
  }

  protected override async handleRequest({ context, ttl }: ThrottlerRequest): Promise<boolean> {
    const http = context.switchToHttp();
    await this.limiter.decide(
      http.getRequest<FastifyRequest & { user?: Principal | null }>(),
      http.getResponse<FastifyReply>(),
      ttl,
    );
    return true;
  }
}
