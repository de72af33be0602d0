import type { AppConfig } from '@app/config';
import compress from '@fastify/compress';
import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import helmet, { type HelmetOptions } from 'helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants } from 'node:zlib';

/**
 * Bodies smaller than this are sent as they are: compressing a single task (~400 bytes) saves a
 * few hundred bytes of a packet that goes anyway, and costs CPU on the hottest read.
 */
export const COMPRESS_THRESHOLD_BYTES = 1024;

/**
 * Brotli's quality (0–11). Its default, 11, is meant for assets compressed once: on a 100 KiB
 * page of tasks it costs tens of milliseconds of CPU per response, where 4 compresses as well as
 * gzip's default for a fraction of the time.
 */
const BROTLI_QUALITY = 4;

/** What a browser on an allowed origin may send, beyond the CORS-safelisted headers. */
const CORS_REQUEST_HEADERS = [
  'authorization',
  'content-type',
  'idempotency-key',
  'if-match',
  'if-none-match',
  'x-api-key',
  'x-request-id',
];

/** What a browser script may read of our responses, beyond the CORS-safelisted headers. */
const CORS_EXPOSED_HEADERS = [
  'etag',
  'location',
  'retry-after',
  'x-request-id',
  'x-cache',
  'idempotent-replayed',
  'ratelimit',
  'ratelimit-policy',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
  'www-authenticate',
  'allow',
];

/** helmet's options: a Content-Security-Policy the Swagger UI at /docs works under. */
const HELMET_OPTIONS: HelmetOptions = {
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'", "'unsafe-inline'"],
      imgSrc: ["'self'", 'data:'],
      objectSrc: ["'none'"],
      baseUri: ["'self'"],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
    },
  },
  // A JSON API is not a document another origin embeds or opens; this one is for pages.
  crossOriginEmbedderPolicy: false,
};

/**
 * The security headers of every response, as helmet sets them with HELMET_OPTIONS (nosniff,
 * frame denial, HSTS: ignored by browsers over plain HTTP, in force behind a TLS-terminating
 * proxy; no referrer; the CSP; the Cross-Origin-*-Policy pair), read once at start-up by running
 * helmet's middleware against a stand-in response. The same for every request, so they are
 * computed once: @fastify/helmet runs the middleware on every request, which cost the cached
 * read 45 µs of its ~165 µs of CPU and a third of its throughput in the benchmark.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = (() => {
  const headers: Record<string, string> = {};
  const response = {
    setHeader: (name: string, value: unknown) => (headers[name.toLowerCase()] = String(value)),
    removeHeader: (name: string) => delete headers[name.toLowerCase()],
  };
  helmet(HELMET_OPTIONS)(
    {} as IncomingMessage,
    response as unknown as ServerResponse,
    () => undefined,
  );
  return Object.freeze(headers);
})();

/**
 * What a serious API sends with every response, registered on the Fastify instance before any
 * route (both apps), each from the Fastify plugin made for it:
 *
 * - **compression** (@fastify/compress): br or gzip, as the client's Accept-Encoding prefers,
 *   for bodies over COMPRESS_THRESHOLD_BYTES (lists, exports, /metrics), never for the small
 *   single resources;
 * - **security headers** (helmet's, see SECURITY_HEADERS; set by applyHttpConventions' onSend
 *   hook);
 * - **CORS** (@fastify/cors), only when CORS_ORIGINS lists origins: those origins, and no other,
 *   may call the api from a browser (preflights answered, our headers readable). Credentials are
 *   headers (a token, an API key), never cookies, so `Access-Control-Allow-Credentials` is not
 *   sent.
 */
export async function applyWebPolicies(fastify: FastifyInstance, config: AppConfig): Promise<void> {
  // Loaded now, not when Fastify starts: @fastify/compress attaches itself to each route as it is
  // registered, and Nest registers its routes before Fastify starts.
  await fastify.register(compress, {
    global: true,
    threshold: COMPRESS_THRESHOLD_BYTES,
    encodings: ['br', 'gzip'],
    brotliOptions: { params: { [constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY } },
  });
  if (config.cors.origins.length > 0) {
    await fastify.register(cors, {
      origin: config.cors.origins,
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: CORS_REQUEST_HEADERS,
      exposedHeaders: CORS_EXPOSED_HEADERS,
      maxAge: 600,
      // Every OPTIONS is the plugin's once CORS is on: a preflight gets the CORS headers, any
      // other OPTIONS a bare 204 (strict, it would be a plain-text 400, not a problem).
      strictPreflight: false,
    });
  }
}
