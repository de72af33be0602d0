import { ArgumentsHost, Catch, ExceptionFilter, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
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
