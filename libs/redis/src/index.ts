export { InjectRedis, REDIS_CLIENT, RedisModule, createRedisClient } from './redis.module';
