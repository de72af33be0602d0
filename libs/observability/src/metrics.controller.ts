import { Public } from '@app/auth';
import { Controller, Get, Res } from '@nestjs/common';
import { SkipThrottle } from '@nestjs/throttler';
import { ApiExcludeController } from '@nestjs/swagger';
import { PrometheusController } from '@willsoto/nestjs-prometheus';
import type { FastifyReply } from 'fastify';

/**
 * The Prometheus scrape endpoint. Public, like the probes: scrapers do not sign in; and never
 * rate limited, so a scraper is never refused its view of an overload.
 */
@Public()
@SkipThrottle()
@ApiExcludeController()
@Controller()
export class MetricsController extends PrometheusController {
  @Get()
  override async index(@Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    return super.index(reply);
  }
}
