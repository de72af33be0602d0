import { ArgumentsHost, Catch, ExceptionFilter, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { allowedMethods } from './allowed-methods';
import { ApiException } from './api.exception';
import { sendProblem, toProblem } from './problem-details';

/**
 * The one place errors become responses: RFC 9457 problem details for every error, 5xx logged
 * with the request id (the body names no cause: no stack, no SQL).
 */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    // Dropped quietly: a handler that failed after its request was answered (HANDLER_TIMEOUT),
    // and a body cut short by its connection closing (a client that left, or a 408): the body
    // never arrived, so no handler ran, and nobody is left to answer.
    if (reply.sent || (request.raw.destroyed && !request.raw.complete)) return;
    if (request.is404) {
      // No route for this method and path; if the path has routes under other methods, this is
      // a 405 with Allow (RFC 9110 §15.5.6), and OPTIONS is answered with Allow alone.
      const allow = allowedMethods(request);
      if (allow.length > 0 && request.method === 'OPTIONS') {
        void reply.code(204).header('allow', allow.join(', ')).send();
        return;
      }
      if (allow.length > 0) {
        exception = new ApiException(
          'METHOD_NOT_ALLOWED',
          `${request.method} is not served here; this path serves ${allow.join(', ')}.`,
          undefined,
          { allow: allow.join(', ') },
        );
      }
    }
    const problem = toProblem(exception, request);
    if (problem.internal) {
      // Name, message and stack only: a failed query also carries its SQL and parameters,
      // which may hold secrets (password hashes, token hashes) and never go to the logs.
      const error = exception instanceof Error ? exception : new Error(String(exception));
      this.logger.error(
        {
          err: { type: error.name, message: error.message, stack: error.stack },
          req: { id: request.id, method: request.method, route: request.routeOptions?.url },
        },
        'Request failed',
      );
    }
    sendProblem(reply, problem);
  }
}
