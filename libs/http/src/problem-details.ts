import { HttpException } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiException, apiExceptionIn, FieldError } from './api.exception';
import { ERROR_CATALOG, ErrorCode, codeForStatus } from './error-codes';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
const TYPE_BASE = 'https://taskhub.dev/problems/';

/** RFC 9457 problem details, with Taskhub's `code`, `requestId` and field `errors`. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: ErrorCode;
  requestId: string;
  errors?: FieldError[];
}

export interface Problem {
  body: ProblemDetails;
  headers: Record<string, string>;
  /**
   * True for a 5xx whose cause is to be logged (the body says nothing of it). Not for the
   * refusals the service chooses while protecting itself (an open breaker, load shedding,
   * degraded mode): they come by the thousand when they come, the access log and the metrics
   * count each one, and their cause is logged once, where it changes (a breaker opening).
   */
  internal: boolean;
}

const DELIBERATE_REFUSALS: ReadonlySet<ErrorCode> = new Set([
  'DEPENDENCY_UNAVAILABLE',
  'OVERLOADED',
  'DEGRADED',
]);

function detailOf(exception: HttpException): string {
  const response = exception.getResponse();
  if (typeof response === 'string') return response;
  const message = (response as { message?: unknown }).message;
  if (typeof message === 'string') return message;
  if (Array.isArray(message)) return message.join('; ');
  return exception.message;
}

export function toProblem(thrown: unknown, request: FastifyRequest): Problem {
  const error = apiExceptionIn(thrown) ?? thrown;
  let code: ErrorCode;
  let detail: string;
  let errors: FieldError[] | undefined;
  let headers: Record<string, string> = {};
  if (error instanceof ApiException) {
    ({ code, detail, errors, headers } = error);
  } else if (error instanceof HttpException) {
    code = codeForStatus(error.getStatus());
    detail = error.getStatus() >= 500 ? ERROR_CATALOG[code].title : detailOf(error);
  } else {
    // Nest hands Fastify's own errors (limits, media types) over as HttpExceptions, so anything
    // else is a bug or a failed dependency: its cause is logged, never sent.
    code = 'INTERNAL_ERROR';
    detail = 'An unexpected error occurred. Quote the requestId when reporting it.';
  }
  const { status, title } = ERROR_CATALOG[code];
  if (status === 401 && !headers['www-authenticate']) {
    headers = { ...headers, 'www-authenticate': 'Bearer' };
  }
  const body: ProblemDetails = {
    type: `${TYPE_BASE}${code.toLowerCase().replace(/_/g, '-')}`,
    title,
    status,
    detail,
    instance: request.url.split('?')[0] ?? '/',
    code,
    requestId: String(request.id),
  };
  if (errors) body.errors = errors;
  return { body, headers, internal: status >= 500 && !DELIBERATE_REFUSALS.has(code) };
}

/** The code of the problem each failed request was answered with (for the request log). */
const problemCodes = new WeakMap<FastifyRequest, string>();

/** The problem code a request was answered with, if it failed. */
export function problemCodeOf(request: FastifyRequest): string | undefined {
  return problemCodes.get(request);
}

export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  problemCodes.set(reply.request, problem.body.code);
  return reply
    .status(problem.body.status)
    .headers(problem.headers)
    .type(PROBLEM_CONTENT_TYPE)
    .send(problem.body);
}
