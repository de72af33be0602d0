import {
  ArgumentsHost,
  Catch,
  RpcExceptionFilter,
  UseFilters,
  applyDecorators,
} from '@nestjs/common';
import { EventPattern, RmqContext } from '@nestjs/microservices';
import type { Message } from 'amqplib';
import { ATTEMPT_HEADER } from './job-server';
import { Observable, throwError } from 'rxjs';

/**
 * Hands a job's error to JobServer as it was thrown. Nest's default RPC filter would replace
 * any error but an RpcException with "Internal server error", and the dead-letter queue and the
 * logs would no longer say what failed.
 */
@Catch()
class JobErrors implements RpcExceptionFilter {
  catch(exception: unknown, _host: ArgumentsHost): Observable<never> {
    return throwError(() => exception);
  }
}

/**
 * A job handler for `pattern` (one decorator per handler): JobServer acks the message when the
 * handler's promise resolves, and retries or dead-letters it when it rejects. Handlers never
 * ack, and must be idempotent (a job can run more than once: at-least-once delivery).
 */
export const Job = (pattern: string) =>
  applyDecorators(EventPattern(pattern), UseFilters(JobErrors));

/** Which attempt at its job a delivery is: 1 for the first, JOB_MAX_ATTEMPTS for the last. */
export function attemptOf(context: RmqContext): number {
  const message = context.getMessage() as Message;
  return Number(message.properties.headers?.[ATTEMPT_HEADER] ?? 1);
}
