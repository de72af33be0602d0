export { listen } from './channel';
export type { ChannelListener } from './channel';
export { InjectRedis, RedisModule, createRedisClient } from './redis.module';
export { withTimeout } from './timeout';
