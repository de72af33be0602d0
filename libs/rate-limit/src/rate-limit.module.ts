import { ERROR_METER, type ErrorMeter } from '@app/http';
import { AppConfig, APP_CONFIG } from '@app/config';
import { createRedisClient } from '@app/redis';
import { DynamicModule, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { makeCounterProvider } from '@willsoto/nestjs-prometheus';
import type Redis from 'ioredis';
import { RateLimitOverrides } from './rate-limit-overrides';
import { RateLimitGuard } from './rate-limit.guard';
import { RateLimiter } from './rate-limiter';
import { RATE_LIMIT_REDIS, RedisThrottlerStorage } from './redis-throttler.storage';
import { WINDOW_MS } from './tiers';

/**
 * The limiter's own Redis connection: it reconnects every 100 ms (the shared client backs off to
 * 2 s), so counting resumes within a second of Redis coming back, and writes each command at once.
 */
@Module({
  providers: [
    {
      provide: RATE_LIMIT_REDIS,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) =>
        createRedisClient(
          config,
          {
            // The storage waits DECISION_TIMEOUT_MS; this only clears commands a hung server
            // never answers from the client's queue.
            commandTimeout: 1000,
            retryStrategy: () => 100,
            // Written at once: auto-pipelining holds commands for the next turn of the event
            // loop, which on a busy process comes after the 50 ms bound (the exactness test
            // admitted up to 117 of 100 with it, exactly 100 without).
            enableAutoPipelining: false,
          },
          'RateLimitRedis',
        ),
    },
  ],
  exports: [RATE_LIMIT_REDIS],
})
class RateLimitRedisModule implements OnApplicationShutdown {
  constructor(@Inject(RATE_LIMIT_REDIS) private readonly redis: Redis) {}

  onApplicationShutdown(): void {
    this.redis.disconnect();
  }
}

/**
 * Rate limiting per CONTRACT §6: the global RateLimitGuard (after the auth guard) on
 * @nestjs/throttler with the Redis storage. Off when RATE_LIMIT_ENABLED=false. Routes that must
 * never be limited (probes, metrics) carry @SkipThrottle().
 */
@Module({})
export class RateLimitModule {
  static forRoot(config: AppConfig): DynamicModule {
    if (!config.rateLimit.enabled) return { module: RateLimitModule };
    return {
      module: RateLimitModule,
      // Global: the admin routes that change overrides reload them here (@Optional() there, as
      // nothing is provided when the limiter is off).
      global: true,
      imports: [
        ThrottlerModule.forRootAsync({
          imports: [RateLimitRedisModule],
          inject: [RATE_LIMIT_REDIS],
          useFactory: (redis: Redis) => ({
            // One window for everyone; the limit is per client (RateLimitGuard), not per route.
            throttlers: [{ name: 'default', ttl: WINDOW_MS, limit: TIER_LIMIT_UNUSED }],
            storage: new RedisThrottlerStorage(redis),
          }),
        }),
      ],
      providers: [
        RateLimitOverrides,
        RateLimiter,
        // Errors no guard counted (refused before the guards, or by the auth guard) count against
        // their client: the caller once authenticated (a 403), else its address (a 401, a 404).
        {
          provide: ERROR_METER,
          inject: [RateLimiter],
          useFactory: (limiter: RateLimiter): ErrorMeter => ({
            count: (request, reply) => limiter.decide(request, reply),
          }),
        },
        makeCounterProvider({
          name: 'rate_limit_decisions_total',
          help: 'Rate-limit decisions by tier: allowed, limited, or fallback (made without Redis).',
          labelNames: ['tier', 'decision'],
        }),
        { provide: APP_GUARD, useClass: RateLimitGuard },
      ],
      exports: [RateLimitOverrides, ERROR_METER],
    };
  }
}

/** RateLimitGuard sets each client's limit; the throttler's own `limit` is never read. */
const TIER_LIMIT_UNUSED = Number.MAX_SAFE_INTEGER;
