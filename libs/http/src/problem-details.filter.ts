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
    const problem = toProblem(exception, request);
    if (problem.internal) {
      this.logger.error(
        { err: exception, requestId: request.id, route: request.routeOptions?.url },
        'Request failed',
      );
    }
    sendProblem(reply, problem);
  }
}
