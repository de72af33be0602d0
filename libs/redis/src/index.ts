export { InjectRedis, RedisModule, createRedisClient } from './redis.module';
