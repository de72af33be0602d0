import { AppConfig, InjectConfig } from '@app/config';
import { withTimeout } from '@app/redis';
import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { connect } from 'amqplib';

/**
 * Can this instance reach the broker? Opens and closes one AMQP connection, bounded by a timeout.
 * (The worker reports its consumer's own connection instead: see apps/worker.)
 */
@Injectable()
export class RabbitMqHealthIndicator {
  constructor(
    @InjectConfig() private readonly config: AppConfig,
    private readonly indicators: HealthIndicatorService,
  ) {}

  async check(key = 'rabbitmq', timeoutMs = 1000): Promise<HealthIndicatorResult> {
    const session = this.indicators.check(key);
    try {
      const connection = await withTimeout(
        connect(this.config.rabbitmq.url, { timeout: timeoutMs }),
        timeoutMs,
      );
      await connection.close();
      return session.up();
    } catch (error) {
      return session.down({ message: (error as Error).message });
    }
  }
}
