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

  /**
   * Labelled series by `method route status` (bounded: routes are templates). prom-client would
   * hash the label set again on every call.
   */
  private readonly series = new Map<
    string,
    { requests: Counter.Internal; duration: Histogram.Internal<string> }
  >();

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    fastify.addHook('onResponse', (request, reply, done) => {
      const status = reply.statusCode;
      const route = request.routeOptions.url ?? 'unmatched';
      const series = this.seriesFor(request.method, route, status);
      series.requests.inc();
      series.duration.observe(reply.elapsedTime / 1000);
      const path = request.url.split('?', 1)[0] ?? '';
      if (!QUIET.test(path)) {
        const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
        if (this.logger.isLevelEnabled(level)) {
          // Flat fields: cheaper to serialise than nested objects, on every request.
          this.logger[level](
            {
              reqId: request.id,
              method: request.method,
              path,
              statusCode: status,
              responseTime: Math.round(reply.elapsedTime),
            },
            'request completed',
          );
        }
      }
      done();
    });
  }

  private seriesFor(method: string, route: string, status: number) {
    const key = `${method} ${route} ${status}`;
    let series = this.series.get(key);
    if (!series) {
      series = {
        requests: this.requests.labels(method, route, String(status)),
        duration: this.duration.labels(method, route, String(status)),
      };
      this.series.set(key, series);
    }
    return series;
  }
}
