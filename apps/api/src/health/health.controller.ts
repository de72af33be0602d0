import { Public } from '@app/auth';
import { Probes, RabbitMqHealthIndicator, RedisHealthIndicator } from '@app/health';
import { BreakersHealthIndicator } from '@app/resilience';
import { Controller, Get, Res } from '@nestjs/common';
import { SkipThrottle } from '@nestjs/throttler';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { TypeOrmHealthIndicator } from '@nestjs/terminus';
import type { FastifyReply } from 'fastify';

/** The readiness body (@nestjs/terminus's, with `degraded`): each check by name. */
const READINESS = {
  type: 'object',
  required: ['status'],
  properties: {
    status: { type: 'string', enum: ['ok', 'error', 'shutting_down'] },
    info: { type: 'object', additionalProperties: true },
    error: { type: 'object', additionalProperties: true },
    details: { type: 'object', additionalProperties: true },
    degraded: { type: 'object', additionalProperties: true },
  },
};

/** Kubernetes probes. Outside /v1, public, never rate limited, and left out of the access log. */
@ApiTags('health')
@Public()
@SkipThrottle()
@Controller('health')
export class HealthController {
  constructor(
    private readonly probes: Probes,
    private readonly database: TypeOrmHealthIndicator,
    private readonly redis: RedisHealthIndicator,
    private readonly rabbitmq: RabbitMqHealthIndicator,
    private readonly breakers: BreakersHealthIndicator,
  ) {}

  /** 200 while the event loop turns; never looks at dependencies (a restart would not fix them). */
  @Get('live')
  @ApiOkResponse({
    description: 'The process is alive.',
    schema: { type: 'object', required: ['status'], properties: { status: { enum: ['ok'] } } },
  })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** 200 when this instance can serve: started, database reachable, not draining. */
  @Get('ready')
  @ApiOkResponse({
    description: 'Ready; `degraded` lists optional dependencies that are down.',
    schema: READINESS,
  })
  @ApiServiceUnavailableResponse({
    description: 'Not ready: database unreachable or draining.',
    schema: READINESS,
  })
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<unknown> {
    const { httpStatus, body } = await this.probes.readiness(
      [() => this.database.pingCheck('database', { timeout: 1000 })],
      [() => this.redis.check(), () => this.rabbitmq.check(), () => this.breakers.check()],
    );
    reply.status(httpStatus);
    return body;
  }
}
