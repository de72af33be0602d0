import type { AppConfig } from '@app/config';
import { requestIdFor } from './request-id';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { ApiException } from './api.exception';
import { etagFor, ifNoneMatchHits } from './etag';
import { sendProblem, toProblem } from './problem-details';

export const BODY_LIMIT_BYTES = 1024 * 1024;
/**
 * How deeply a JSON body may nest arrays and objects (`{"a":1}` is 1 level). Our deepest body is
 * 3; what walks a parsed body (the NUL check, class-transformer, class-validator) recurses, so a
 * body of a few thousand levels would overflow the stack, a 500 without credentials.
 */
export const JSON_MAX_DEPTH = 32;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/**
 * True when the JSON text nests deeper than `max`. One pass over the characters, no recursion
 * and no allocation, before JSON.parse builds anything (a 1 MiB body of `[` is 1M levels);
 * brackets inside strings do not count. Malformed text is left to the parser.
 */
export function nestsDeeperThan(text: string, max: number): boolean {
  // A body shorter than the limit cannot open more levels than it has characters.
  if (text.length <= max) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i += 1;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > max) return true;
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      depth -= 1;
    }
  }
  return false;
}

/** Options for the Fastify instance under Nest: limits, request ids, proxy trust. */
export function fastifyOptions(config: AppConfig): FastifyServerOptions & { skipMiddie: boolean } {
  return {
    // No Nest middleware (NestModule.configure) here: what runs for every request is a Fastify
    // hook (applyHttpConventions, RequestTelemetry). Without this, Nest registers
    // @fastify/middie anyway, and its onRequest hook runs on every request for nothing.
    skipMiddie: true,
    bodyLimit: BODY_LIMIT_BYTES,
    // X-Forwarded-For is believed only from the proxies TRUST_PROXY names.
    trustProxy: config.trustProxy,
    genReqId: requestIdFor,
    requestIdHeader: false,
    // Logging is libs/observability's (one access line a request, from an onResponse hook).
    logger: false,
    // Idle keep-alive sockets are closed at shutdown; busy ones finish their request first.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // Path parameters up to 200 characters (rate-limit identifiers), percent-encoded: 600.
    routerOptions: { maxParamLength: 600 },
    // What Fastify refuses before routing (a malformed percent-encoding) is a problem too.
    frameworkErrors: (error, request, reply) => {
      // Sent before any hook is attached: the request id is set here.
      reply.header('x-request-id', request.id);
      void sendProblem(
        reply,
        toProblem(
          new ApiException('BAD_REQUEST', `The request URL is malformed: ${error.message}`),
          request,
        ),
      );
    },
  };
}

/**
 * What must hold for every request, including those that never reach a handler: JSON is the only
 * body type (anything else is 415), a body that is not JSON is 400 MALFORMED_JSON, one nested
 * deeper than JSON_MAX_DEPTH is 400 VALIDATION_FAILED before it is parsed, every response
 * has X-Request-ID, and authenticated responses are `Cache-Control: private`.
 */
export function applyHttpConventions(fastify: FastifyInstance): void {
  // Declared up front so every request object has one shape (the auth guard sets it).
  fastify.decorateRequest('user', null);
  // Fastify's own parser (with its prototype-poisoning protection), with our error code.
  const parseJson = fastify.getDefaultJsonParser('error', 'error');
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser(
    'application/json',
    { parseAs: 'string', bodyLimit: BODY_LIMIT_BYTES },
    (request, body, done) =>
      nestsDeeperThan(body as string, JSON_MAX_DEPTH)
        ? done(
            new ApiException(
              'VALIDATION_FAILED',
              `The request body nests arrays and objects deeper than ${JSON_MAX_DEPTH} levels.`,
            ),
            undefined,
          )
        : parseJson(request, body as string, (error, value) =>
            error
              ? done(
                  new ApiException('MALFORMED_JSON', 'The request body is not valid JSON.'),
                  undefined,
                )
              : done(null, value),
          ),
  );
  // A single versioned resource (an object with an id and a numeric version: never a list, never
  // an error) gets a strong ETag, and a GET whose If-None-Match holds it gets 304 and no body. A
  // hook rather than a Nest interceptor: the interceptor's per-request AsyncResource.bind and
  // RxJS pipe cost ~10% of a cached read in the benchmark.
  fastify.addHook('preSerialization', (request, reply, payload: unknown, done) => {
    const resource = payload as { id?: unknown; version?: unknown } | null;
    if (
      reply.statusCode < 300 &&
      typeof resource === 'object' &&
      resource !== null &&
      typeof resource.id === 'string' &&
      typeof resource.version === 'number'
    ) {
      const etag = etagFor(resource.version);
      reply.header('etag', etag);
      if (
        (request.method === 'GET' || request.method === 'HEAD') &&
        ifNoneMatchHits(request.headers['if-none-match'], etag)
      ) {
        reply.code(304); // the body is dropped in onSend, after serialisation
      }
    }
    done(null, payload);
  });
  // One onSend hook for every response, errors included (each Fastify hook costs a little on
  // every request).
  fastify.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id);
    if ((request as { user?: unknown }).user) reply.header('cache-control', 'private');
    done(null, reply.statusCode === 304 ? '' : payload);
  });
}
