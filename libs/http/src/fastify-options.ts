import type { AppConfig } from '@app/config';
import { requestIdFor } from './request-id';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { ApiException } from './api.exception';

export const BODY_LIMIT_BYTES = 1024 * 1024;

/** Options for the Fastify instance under Nest: limits, request ids, proxy trust. */
export function fastifyOptions(config: AppConfig): FastifyServerOptions {
  return {
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
  };
}

/**
 * What must hold for every request, including those that never reach a handler: JSON is the only
 * body type (anything else is 415), a body that is not JSON is 400 MALFORMED_JSON, every response
 * has X-Request-ID, and authenticated responses are `Cache-Control: private`.
 */
export function applyHttpConventions(fastify: FastifyInstance): void {
  // Fastify's own parser (with its prototype-poisoning protection), with our error code.
  const parseJson = fastify.getDefaultJsonParser('error', 'error');
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser(
    'application/json',
    { parseAs: 'string', bodyLimit: BODY_LIMIT_BYTES },
    (request, body, done) =>
      parseJson(request, body as string, (error, value) =>
        error
          ? done(
              new ApiException('MALFORMED_JSON', 'The request body is not valid JSON.'),
              undefined,
            )
          : done(null, value),
      ),
  );
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  fastify.addHook('onSend', (request, reply, payload, done) => {
    if ((request as { user?: unknown }).user !== undefined)
      reply.header('cache-control', 'private');
    done(null, payload);
  });
}
