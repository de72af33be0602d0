import { AppConfig, APP_CONFIG } from '@app/config';
import { Global, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import Redis, { RedisOptions } from 'ioredis';

export const REDIS_CLIENT = Symbol('REDIS_CLIENT');
export const InjectRedis = (): ParameterDecorator => Inject(REDIS_CLIENT);

/**
 * One shared ioredis client a process. Commands fail at once while Redis is unreachable instead of
 * queueing (no offline queue) and give up after a timeout, so Redis trouble never stalls a
 * request: callers decide their fallback.
 */
export function createRedisClient(config: AppConfig, overrides: RedisOptions = {}): Redis {
  return new Redis(config.redis.url, {
    keyPrefix: config.redis.keyPrefix,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: 500,
    connectTimeout: 2000,
    enableAutoPipelining: true,
    // Reconnect forever, backing off to 2 s between attempts.
    retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
    lazyConnect: false,
    ...overrides,
  });
}

@Global()
@Module({
  providers: [{ provide: REDIS_CLIENT, inject: [APP_CONFIG], useFactory: createRedisClient }],
  exports: [REDIS_CLIENT],
})
export class RedisModule implements OnApplicationShutdown {
  constructor(@Inject(REDIS_CLIENT) private readonly redis: Redis) {}

  onApplicationShutdown(): void {
    this.redis.disconnect();
  }
}
