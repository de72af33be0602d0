import { AppConfig, APP_CONFIG } from '@app/config';
import { Global, Inject, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import Redis, { RedisOptions } from 'ioredis';

export const REDIS_CLIENT = Symbol('REDIS_CLIENT');
export const InjectRedis = (): ParameterDecorator => Inject(REDIS_CLIENT);

/**
 * One shared ioredis client a process. Commands fail at once while Redis is unreachable instead of
 * queueing (no offline queue) and give up after a timeout, so Redis trouble never stalls a
 * request: callers decide their fallback. An outage is logged once when it starts and once when
 * it ends (ioredis would otherwise print every failed reconnect to stderr, outside our logs).
 */
export function createRedisClient(
  config: AppConfig,
  overrides: RedisOptions = {},
  name = 'Redis',
): Redis {
  const client = new Redis(config.redis.url, {
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
  const logger = new Logger(name);
  let down = false;
  client.on('error', (error: Error) => {
    if (!down) logger.warn(`Redis is unreachable, retrying: ${error.message}`);
    down = true;
  });
  client.on('ready', () => {
    if (down) logger.log('Redis is reachable again');
    down = false;
  });
  return client;
}

@Global()
@Module({
  providers: [
    {
      provide: REDIS_CLIENT,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => createRedisClient(config),
    },
  ],
  exports: [REDIS_CLIENT],
})
export class RedisModule implements OnApplicationShutdown {
  constructor(@Inject(REDIS_CLIENT) private readonly redis: Redis) {}

  onApplicationShutdown(): void {
    this.redis.disconnect();
  }
}
