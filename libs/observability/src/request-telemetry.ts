import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import {
  InjectMetric,
  makeCounterProvider,
  makeHistogramProvider,
} from '@willsoto/nestjs-prometheus';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Counter, Histogram } from 'prom-client';

export const ROOT_LOGGER = Symbol('ROOT_LOGGER');

const LABELS = ['method', 'route', 'status'];

export const httpMetricProviders = [
  makeCounterProvider({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route template and status code.',
    labelNames: LABELS,
  }),
  makeHistogramProvider({
    name: 'http_request_duration_seconds',
    help: 'Time from request received to response sent, by method, route template and status.',
    labelNames: LABELS,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  }),
];

// Probes and scrapes would drown the access log.
const QUIET = /^\/(health\/|metrics)/;

/**
 * One Fastify onResponse hook a request, so 404s, guard refusals and body-parser errors count
 * too: the access log line (with the request id; never headers or the query string, which may
 * carry credentials or search text) and the HTTP metrics. `route` is the route template
 * (`/v1/tasks/:id`), never the raw path: a series per task id would explode the series count.
 */
@Injectable()
export class RequestTelemetry implements OnModuleInit {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    @Inject(ROOT_LOGGER) private readonly logger: Logger,
    @InjectMetric('http_requests_total') private readonly requests: Counter<string>,
    @InjectMetric('http_request_duration_seconds') private readonly duration: Histogram<string>,
  ) {}

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    fastify.addHook('onResponse', (request, reply, done) => {
      const status = reply.statusCode;
      const labels = {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status: String(status),
      };
      this.requests.inc(labels);
      this.duration.observe(labels, reply.elapsedTime / 1000);
      const path = request.url.split('?', 1)[0] ?? '';
      if (!QUIET.test(path)) {
        const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
        if (this.logger.isLevelEnabled(level)) {
          this.logger[level](
            {
              req: { id: request.id, method: request.method, path },
              res: { statusCode: status },
              responseTime: Math.round(reply.elapsedTime),
            },
            'request completed',
          );
        }
      }
      done();
    });
  }
}
