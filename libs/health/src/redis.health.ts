import { InjectRedis, withTimeout } from '@app/redis';
import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import type Redis from 'ioredis';

@Injectable()
export class RedisHealthIndicator {
  constructor(
    @InjectRedis() private readonly redis: Redis,
    private readonly indicators: HealthIndicatorService,
  ) {}

  async check(key = 'redis', timeoutMs = 1000): Promise<HealthIndicatorResult> {
    const session = this.indicators.check(key);
    try {
      await withTimeout(this.redis.ping(), timeoutMs);
      return session.up();
    } catch (error) {
      return session.down({ message: (error as Error).message });
    }
  }
}
