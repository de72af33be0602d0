import type { AppConfig } from '@app/config';
import { requestIdFor } from './request-id';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type ServerOptions, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { ROUTER_OPTIONS, trackRoutes } from './allowed-methods';
import { ApiException } from './api.exception';
import type { ErrorCode } from './error-codes';
import { etagFor, ifNoneMatchHits } from './etag';
import { applyWebPolicies, SECURITY_HEADERS } from './web-policies';
import { sendProblem, toProblem } from './problem-details';
import {
  assertStorableStrings,
  JSON_MAX_DEPTH,
  mayHoldUnstorableStrings,
} from './storable-strings';

export const BODY_LIMIT_BYTES = 1024 * 1024;
/**
 * How long an idle keep-alive connection stays open (Fastify's own default, made explicit): longer
 * than a load balancer keeps its idle connections to us (nginx/taskhub.conf.template: 60 s), so
 * that the balancer, not the api, closes them, and never writes a request into a connection the
 * api is closing.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 72_000;

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

/**
 * How often Node's http server looks for requests past HTTP_HEADERS_TIMEOUT_MS or
 * HTTP_REQUEST_TIMEOUT_MS (its default, 30 s, would let a 1 s bound last 31 s). The check walks
 * only the connections with a request still arriving.
 */
const CONNECTIONS_CHECK_INTERVAL_MS = 500;

/**
 * What Node's http server reports on a connection before Fastify has a request for it (a timeout
 * while headers or body arrive, a malformed request, headers too large), answered as a problem
 * with `Connection: close`, then the connection is closed. Written to the socket as the
 * 'clientError' event requires; nothing is written once a response has started.
 */
function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  // A slow body has a request, and a response not yet started, attached to the socket (Node's
  // own default handler looks at it the same way): its id and path go into the problem.
  const response = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
  if (socket.writable && !response?.headersSent) {
    const code: ErrorCode =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 'REQUEST_TIMEOUT'
        : error.code === 'HPE_HEADER_OVERFLOW'
          ? 'HEADERS_TOO_LARGE'
          : 'BAD_REQUEST';
    const detail =
      code === 'REQUEST_TIMEOUT'
        ? 'The request (headers and body) did not arrive within the time allowed.'
        : code === 'HEADERS_TOO_LARGE'
          ? 'The request headers are too large.'
          : 'The request is not valid HTTP.';
    const raw = response?.req as { id?: string; url?: string } | undefined;
    const request = { id: raw?.id ?? randomUUID(), url: raw?.url ?? '/' } as FastifyRequest;
    const { body } = toProblem(new ApiException(code, detail), request);
    const text = JSON.stringify(body);
    socket.write(
      `HTTP/1.1 ${body.status} ${STATUS_CODES[body.status]}\r\n` +
        `Content-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n` +
        `X-Request-ID: ${body.requestId}\r\nConnection: close\r\n\r\n${text}`,
    );
  }
  socket.destroy(error);
}

/** Options for the Fastify instance under Nest: limits, timeouts, request ids, proxy trust. */
export function fastifyOptions(
  config: AppConfig,
): FastifyServerOptions & { skipMiddie: boolean; http: ServerOptions } {
  return {
    // No Nest middleware (NestModule.configure) here: what runs for every request is a Fastify
    // hook (applyHttpConventions, RequestTelemetry). Without this, Nest registers
    // @fastify/middie anyway, and its onRequest hook runs on every request for nothing.
    skipMiddie: true,
    bodyLimit: BODY_LIMIT_BYTES,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // X-Forwarded-For is believed only from the proxies TRUST_PROXY names.
    trustProxy: config.trustProxy,
    genReqId: requestIdFor,
    requestIdHeader: false,
    // Logging is libs/observability's (one access line a request, from an onResponse hook).
    logger: false,
    // Idle keep-alive sockets are closed at shutdown; busy ones finish their request first.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    // The headers, then the whole request, must arrive in time: Node's own bounds, checked every
    // CONNECTIONS_CHECK_INTERVAL_MS, and answered by answerClientError with a 408 problem. They
    // end when the request has arrived: the handler has its bound (applyHttpConventions).
    http: {
      headersTimeout: config.http.headersTimeoutMs,
      requestTimeout: config.http.requestTimeoutMs,
      connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS,
    },
    // Fastify sets the server's requestTimeout from its own option (0 by default) after creating it.
    requestTimeout: config.http.requestTimeoutMs,
    clientErrorHandler: answerClientError,
    // Path parameters up to 200 characters (rate-limit identifiers), percent-encoded: 600.
    routerOptions: { ...ROUTER_OPTIONS },
    // What Fastify refuses before routing (a malformed percent-encoding) is a problem too.
    frameworkErrors: (error, request, reply) => {
      // Sent before any hook is attached: the security headers and request id are set here.
      reply.headers(SECURITY_HEADERS);
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
 * deeper than JSON_MAX_DEPTH is 400 VALIDATION_FAILED before it is parsed, one holding a string
 * Postgres cannot store (NUL, an unpaired surrogate) is 400 VALIDATION_FAILED before any guard,
 * interceptor or handler sees it, every response
 * has X-Request-ID, and authenticated responses are `Cache-Control: private`.
 */
export async function applyHttpConventions(
  fastify: FastifyInstance,
  config: AppConfig,
): Promise<void> {
  // Declared up front so every request object has one shape (the auth guard sets it).
  fastify.decorateRequest('user', null);
  fastify.decorateRequest('handlerTimer', null);
  // Before any route is registered: what a 405's Allow is read from.
  trackRoutes(fastify);
  await applyWebPolicies(fastify, config);
  // The handler's bound starts once the request has arrived (preValidation runs after the body
  // is parsed) and ends when the reply starts (onSend). Our own timer: Fastify's handlerTimeout
  // starts at routing, so it would answer a slow body 503 before Node's 408, and it costs an
  // AbortController and listeners per request. One Timeout per request here, nothing else.
  const handlerTimeoutMs = config.http.handlerTimeoutMs;
  fastify.addHook('preValidation', (request, reply, done) => {
    (request as TimedRequest).handlerTimer = setTimeout(
      handlerTimedOut,
      handlerTimeoutMs,
      request,
      reply,
      handlerTimeoutMs,
    );
    done();
  });
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
        : parseJson(request, body as string, (error, value) => {
            if (error) {
              done(
                new ApiException('MALFORMED_JSON', 'The request body is not valid JSON.'),
                undefined,
              );
              return;
            }
            try {
              if (mayHoldUnstorableStrings(body as string)) assertStorableStrings(value);
            } catch (refused) {
              done(refused as ApiException, undefined);
              return;
            }
            done(null, value);
          }),
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
    clearTimeout((request as TimedRequest).handlerTimer ?? undefined);
    reply.headers(SECURITY_HEADERS);
    reply.header('x-request-id', request.id);
    if ((request as { user?: unknown }).user) reply.header('cache-control', 'private');
    done(null, reply.statusCode === 304 ? '' : payload);
  });
}

type TimedRequest = FastifyRequest & { handlerTimer: NodeJS.Timeout | null };

/**
 * A request whose handler has not started its reply within HTTP_HANDLER_TIMEOUT_MS: 503, not 408
 * (RFC 9110: 408 says the client was slow to send; here the server was slow), with Retry-After.
 * The handler may still finish, so a write's outcome is unknown; its late reply is dropped
 * (Fastify ignores a second send, and the problem filter neither sends nor logs it).
 */
function handlerTimedOut(request: FastifyRequest, reply: FastifyReply, ms: number): void {
  if (reply.sent || request.raw.socket?.destroyed) return;
  void sendProblem(
    reply,
    toProblem(
      new ApiException(
        'HANDLER_TIMEOUT',
        `The request was not handled within ${ms} ms; if it was a write, it may still take effect.`,
        undefined,
        { 'retry-after': '1' },
      ),
      request,
    ),
  );
}
