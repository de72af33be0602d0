import type { AppConfig } from '@app/config';
import { ApiException, PROBLEM_CONTENT_TYPE, toProblem } from '@app/http';
import underPressure, { type FastifyUnderPressureOptions } from '@fastify/under-pressure';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Probes and scrapes are never shed: Kubernetes and Prometheus must see an overloaded instance. */
const EXEMPT = /^\/(health\/|metrics$)/;
const SAMPLE_INTERVAL_MS = 250;
const RETRY_AFTER_SECONDS = 2;

/**
 * Load shedding (@fastify/under-pressure): while the event loop's mean delay over the last
 * sample passes LOAD_SHED_EVENT_LOOP_DELAY_MS, a new request is answered 503 OVERLOADED with a
 * Retry-After from an onRequest hook, before authentication, parsing or any other work, so an
 * overloaded instance sheds what it cannot serve instead of making every request late.
 */
export function shedLoad(fastify: FastifyInstance, config: AppConfig): void {
  const maxEventLoopDelay = config.loadShedding.maxEventLoopDelayMs;
  if (maxEventLoopDelay === 0) return;
  void fastify.register(underPressure, {
    maxEventLoopDelay,
    sampleInterval: SAMPLE_INTERVAL_MS,
    // Returning a value sends it as the response (under-pressure's runtime contract; its types
    // only allow void); returning undefined lets the request through.
    pressureHandler: ((request: FastifyRequest, reply: FastifyReply) => {
      if (EXEMPT.test(request.url)) return undefined; // served as usual
      const problem = toProblem(
        new ApiException(
          'OVERLOADED',
          'This instance is overloaded; retry shortly, or on another instance.',
          undefined,
          { 'retry-after': String(RETRY_AFTER_SECONDS) },
        ),
        request,
      );
      void reply.status(problem.body.status).headers(problem.headers).type(PROBLEM_CONTENT_TYPE);
      return problem.body;
    }) as unknown as NonNullable<FastifyUnderPressureOptions['pressureHandler']>,
  });
}
