import { AppConfig, APP_CONFIG } from '@app/config';
import { createRedisClient } from '@app/redis';
import { DynamicModule, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { makeCounterProvider } from '@willsoto/nestjs-prometheus';
import type Redis from 'ioredis';
import { RateLimitOverrides } from './rate-limit-overrides';
import { RateLimitGuard } from './rate-limit.guard';
import {
  DECISION_TIMEOUT_MS,
  RATE_LIMIT_REDIS,
  RedisThrottlerStorage,
} from './redis-throttler.storage';
import { WINDOW_MS } from './tiers';

/**
 * The limiter's own Redis connection: it gives up on a command after DECISION_TIMEOUT_MS (the
 * shared client waits 500 ms) and reconnects every 100 ms, so counting resumes within a second of
 * Redis coming back.
 */
@Module({
  providers: [
    {
      provide: RATE_LIMIT_REDIS,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) =>
        createRedisClient(config, {
          commandTimeout: DECISION_TIMEOUT_MS,
          retryStrategy: () => 100,
        }),
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
        makeCounterProvider({
          name: 'rate_limit_decisions_total',
          help: 'Rate-limit decisions by tier: allowed, limited, or fallback (made without Redis).',
          labelNames: ['tier', 'decision'],
        }),
        { provide: APP_GUARD, useClass: RateLimitGuard },
      ],
      exports: [RateLimitOverrides],
    };
  }
}

/** RateLimitGuard sets each client's limit; the throttler's own `limit` is never read. */
const TIER_LIMIT_UNUSED = Number.MAX_SAFE_INTEGER;
