import { ERROR_CATALOG, PROBLEM_CONTENT_TYPE } from '@app/http';
import { applyDecorators } from '@nestjs/common';
import { ApiResponse, getSchemaPath } from '@nestjs/swagger';

const DESCRIPTIONS: Record<number, string> = {
  304: 'Not modified: the If-None-Match entity tag is current.',
  400: 'Validation failed, malformed JSON, or an unknown field.',
  401: 'Missing, invalid or expired credentials.',
  403: 'Authenticated, but not allowed.',
  404: 'No such resource for this caller.',
  409: 'Conflicts with the current state.',
  412: 'If-Match does not hold the current entity tag.',
  413: 'The body is over 1 MiB.',
  415: 'The body is not JSON.',
  422: 'The Idempotency-Key was used with another request.',
  503: 'Switched off, or unavailable in degraded mode (Retry-After says when to ask again).',
};

/** RFC 9457 problem details as we send them: one component, `Problem`, in the document. */
export const PROBLEM_SCHEMA = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail', 'instance', 'code', 'requestId'],
  properties: {
    type: { type: 'string', format: 'uri' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    instance: { type: 'string' },
    code: { type: 'string', enum: Object.keys(ERROR_CATALOG) },
    requestId: { type: 'string' },
    errors: {
      type: 'array',
      description: 'VALIDATION_FAILED only: each field refused, and why.',
      items: {
        type: 'object',
        required: ['field', 'message'],
        properties: { field: { type: 'string' }, message: { type: 'string' } },
      },
    },
  },
};

/** A response whose body is a problem. */
export const problemContent = () => ({
  [PROBLEM_CONTENT_TYPE]: { schema: { $ref: getSchemaPath('Problem') } },
});

/** Documents a route's error responses as RFC 9457 problem details. */
export function ProblemResponses(...statuses: number[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ...statuses.map((status) =>
      status === 304
        ? ApiResponse({ status, description: DESCRIPTIONS[status] })
        : ApiResponse({
            status,
            description: DESCRIPTIONS[status] ?? 'Error',
            content: problemContent(),
          }),
    ),
  );
}
