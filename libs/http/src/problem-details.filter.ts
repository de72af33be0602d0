import { ArgumentsHost, Catch, ExceptionFilter, Inject, Logger, Optional } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { allowedMethods } from './allowed-methods';
import { ApiException } from './api.exception';
import { ERROR_METER, type ErrorMeter } from './error-meter';
import { sendProblem, toProblem } from './problem-details';

/** The responses the rate limiter counts: every one under /v1, whether or not a route took it. */
const METERED = /^\/v1(?:[/?]|$)/;

/**
 * The one place errors become responses: RFC 9457 problem details for every error, 5xx logged
 * with the request id (the body names no cause: no stack, no SQL). An error under /v1 that no
 * rate-limit decision was made for is counted first (ErrorMeter), so every /v1 response is.
 */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  constructor(@Optional() @Inject(ERROR_METER) private readonly meter?: ErrorMeter) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    // Dropped quietly: a handler that failed after its request was answered (HANDLER_TIMEOUT),
    // and a body cut short by its connection closing (a client that left, or a 408): the body
    // never arrived, so no handler ran, and nobody is left to answer.
    if (reply.sent || (request.raw.destroyed && !request.raw.complete)) return;
    this.answer(exception, request, reply).catch((error: unknown) => {
      this.logger.error({ err: error, req: { id: request.id } }, 'Could not answer an error');
      if (!reply.sent) sendProblem(reply, toProblem(error, request));
    });
  }

  private async answer(error: unknown, request: FastifyRequest, reply: FastifyReply) {
    let exception = error;
    // No route for this method and path; if the path has routes under other methods, this is a
    // 405 with Allow (RFC 9110 §15.5.6), and OPTIONS is answered with Allow alone.
    const allow = request.is404 ? allowedMethods(request) : [];
    let options = allow.length > 0 && request.method === 'OPTIONS';
    if (allow.length > 0 && !options) {
      exception = new ApiException(
        'METHOD_NOT_ALLOWED',
        `${request.method} is not served here; this path serves ${allow.join(', ')}.`,
        undefined,
        { allow: allow.join(', ') },
      );
    }
    // The limiter's decision sets its fields; none yet means no guard counted this request.
    if (this.meter && METERED.test(request.url) && !reply.hasHeader('ratelimit')) {
      try {
        await this.meter.count(request, reply);
      } catch (limited) {
        exception = limited;
        options = false;
      }
      // A handler timeout may have answered while the meter waited.
      if (reply.sent) return;
    }
    if (options) {
      void reply.code(204).header('allow', allow.join(', ')).send();
      return;
    }
    const problem = toProblem(exception, request);
    if (problem.internal) {
      // Name, message and stack only: a failed query also carries its SQL and parameters,
      // which may hold secrets (password hashes, token hashes) and never go to the logs.
      const cause = exception instanceof Error ? exception : new Error(String(exception));
      this.logger.error(
        {
          err: { type: cause.name, message: cause.message, stack: cause.stack },
          req: { id: request.id, method: request.method, route: request.routeOptions?.url },
        },
        'Request failed',
      );
    }
    sendProblem(reply, problem);
  }
}
