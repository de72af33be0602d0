export { InjectRedis, RedisModule } from './redis.module';
