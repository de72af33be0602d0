import { parseIfMatch } from '@app/http';
import {
  Delete,
  ExecutionContext,
  Get,
  HttpCode,
  Patch,
  Post,
  Type,
  applyDecorators,
  createParamDecorator,
} from '@nestjs/common';
import {
  ApiCreatedResponse,
  ApiHeader,
  ApiNoContentResponse,
  ApiOkResponse,
} from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import type { IdempotencyRequest } from './idempotency.service';
import { ProblemResponses } from './problem-responses.decorator';

/**
 * The routes of an owned, versioned resource (categories, tasks): each decorator is the HTTP
 * verb, the path and the OpenAPI description of the route with every error it can answer.
 */
/** Documents the Idempotency-Key header of a POST that creates. */
export const IdempotencyKeyHeader = () =>
  ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description: 'Retries with the same key and body replay the first response for 24 h.',
  });

export const CreateRoute = (type: Type, ...conflicts: number[]) =>
  applyDecorators(
    Post(),
    IdempotencyKeyHeader(),
    ApiCreatedResponse({ type, description: 'Created; Location names it, ETag versions it.' }),
    ProblemResponses(400, 413, 415, 422, ...conflicts),
  );

/** Creates a resource with a secret shown once (API keys, webhooks): a replay leaves it out. */
export const CreateWithSecretRoute = (type: Type, secret: string) =>
  applyDecorators(
    Post(),
    ApiHeader({
      name: 'Idempotency-Key',
      required: false,
      description: `A retry with the same key and body replays the first answer, without \`${secret}\`.`,
    }),
    ApiCreatedResponse({ type, description: `Created: \`${secret}\` is shown this once.` }),
    ProblemResponses(400, 413, 415, 422),
  );

export const ListRoute = (type: Type) =>
  applyDecorators(Get(), ApiOkResponse({ type }), ProblemResponses(400));

export const ReadRoute = (type: Type) =>
  applyDecorators(
    Get(':id'),
    ApiHeader({ name: 'If-None-Match', required: false, description: '304 if the ETag matches.' }),
    ApiOkResponse({ type, description: 'With a strong ETag.' }),
    ProblemResponses(304, 404),
  );

const IfMatchDoc = ApiHeader({
  name: 'If-Match',
  required: false,
  description: 'Apply only if the resource still has this ETag (else 412).',
});

export const UpdateRoute = (type: Type, ...conflicts: number[]) =>
  applyDecorators(
    Patch(':id'),
    IfMatchDoc,
    ApiOkResponse({ type }),
    ProblemResponses(400, 404, 412, 413, 415, ...conflicts),
  );

export const DeleteRoute = (description = 'Deleted.') =>
  applyDecorators(
    Delete(':id'),
    HttpCode(204),
    IfMatchDoc,
    ApiNoContentResponse({ description }),
    ProblemResponses(404, 412),
  );

/**
 * Documents If-Match on a write to a resource without versions (checkUnversioned): it is
 * evaluated, never ignored.
 */
export const UnversionedIfMatch = () =>
  applyDecorators(
    ApiHeader({
      name: 'If-Match',
      required: false,
      description:
        'This resource has no ETag: `*` applies the change only while it exists; any entity tag is 412.',
    }),
    ProblemResponses(412),
  );

/** The parsed If-Match header (see parseIfMatch). */
export const IfMatchCondition = createParamDecorator((_: unknown, context: ExecutionContext) =>
  parseIfMatch(context.switchToHttp().getRequest<FastifyRequest>().headers['if-match']),
);

/** What identifies a create for Idempotency-Key: the key, method, route template and body. */
export const Idempotency = createParamDecorator(
  (_: unknown, context: ExecutionContext): IdempotencyRequest => {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const key = request.headers['idempotency-key'];
    return {
      key: typeof key === 'string' ? key : undefined,
      method: request.method,
      route: request.routeOptions.url ?? request.url,
      body: request.body,
    };
  },
);
