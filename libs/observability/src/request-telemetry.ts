import { Inject, Injectable, OnModuleInit, Optional } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import {
  InjectMetric,
  makeCounterProvider,
  makeHistogramProvider,
} from '@willsoto/nestjs-prometheus';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Counter, Histogram } from 'prom-client';

export const ROOT_LOGGER = Symbol('ROOT_LOGGER');

/**
 * Something more to do with each answered request, from the same hook (one hook fewer per
 * request than a hook of its own): the api's request log. Not called for probes and scrapes.
 */
export interface RequestRecorder {
  record(request: FastifyRequest, reply: FastifyReply, route: string, elapsedMs: number): void;
}
export const REQUEST_RECORDER = Symbol('REQUEST_RECORDER');

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

// Probes and scrapes (by route template) would drown the access log.
const QUIET_ROUTES = new Set(['/health/live', '/health/ready', '/metrics']);

/** The labelled children of one `method route status`, and whether its requests are logged. */
interface Series {
  route: string;
  requests: Counter.Internal;
  duration: Histogram.Internal<string>;
  logged: boolean;
}

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
    @Optional() @Inject(REQUEST_RECORDER) private readonly recorder?: RequestRecorder,
  ) {}

  /**
   * The series met so far, by route template, then method, then status (bounded: routes are
   * templates), so the hot path builds no key string: prom-client would hash the label set
   * again on every call.
   */
  private readonly series = new Map<string, Map<string, Map<number, Series>>>();

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    fastify.addHook('onResponse', (request, reply, done) => {
      const status = reply.statusCode;
      const series = this.seriesFor(request.method, request.routeOptions.url, status);
      const elapsed = reply.elapsedTime;
      series.requests.inc();
      series.duration.observe(elapsed / 1000);
      if (series.logged) {
        const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
        if (this.logger.isLevelEnabled(level)) {
          const query = request.url.indexOf('?');
          // Flat fields: cheaper to serialise than nested objects, on every request.
          this.logger[level](
            {
              reqId: request.id,
              method: request.method,
              path: query === -1 ? request.url : request.url.slice(0, query),
              statusCode: status,
              responseTime: Math.round(elapsed),
            },
            'request completed',
          );
        }
        this.recorder?.record(request, reply, series.route, elapsed);
      }
      done();
    });
  }

  private seriesFor(method: string, url: string | undefined, status: number): Series {
    const route = url ?? 'unmatched';
    let byMethod = this.series.get(route);
    if (!byMethod) this.series.set(route, (byMethod = new Map<string, Map<number, Series>>()));
    let byStatus = byMethod.get(method);
    if (!byStatus) byMethod.set(method, (byStatus = new Map<number, Series>()));
    let series = byStatus.get(status);
    if (!series) {
      series = {
        route,
        requests: this.requests.labels(method, route, String(status)),
        duration: this.duration.labels(method, route, String(status)),
        logged: !QUIET_ROUTES.has(route),
      };
      byStatus.set(status, series);
    }
    return series;
  }
}
