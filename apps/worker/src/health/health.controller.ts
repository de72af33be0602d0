import { Public } from '@app/auth';
import { Probes } from '@app/health';
import { Controller, Get, Res } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import type { FastifyReply } from 'fastify';
import { ConsumerStatus } from '../jobs/consumer-status';

@Public()
@Controller('health')
export class HealthController {
  constructor(
    private readonly probes: Probes,
    private readonly indicators: HealthIndicatorService,
    private readonly consumer: ConsumerStatus,
  ) {}

  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Ready while every queue's RabbitMQ consumer is connected and the worker is not draining. */
  @Get('ready')
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<unknown> {
    const { httpStatus, body } = await this.probes.readiness([
      () => {
        const session = this.indicators.check('rabbitmq');
        const state = { consumers: this.consumer.current };
        return Promise.resolve(this.consumer.connected ? session.up(state) : session.down(state));
      },
    ]);
    reply.status(httpStatus);
    return body;
  }
}
