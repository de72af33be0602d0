import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const REQUEST_ID_HEADER = 'x-request-id';

// A client's id is echoed back and written to logs, so only short, plain tokens are taken.
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Fastify's genReqId: the client's X-Request-ID when it is sane, else a new UUID. The id is also
 * put on the raw request, where pino-http (which sees only the raw request) picks it up, so the
 * access log, every log line of the request and the response header carry the same id.
 */
export function requestIdFor(raw: IncomingMessage): string {
  const header = raw.headers[REQUEST_ID_HEADER];
  const id = typeof header === 'string' && SANE_REQUEST_ID.test(header) ? header : randomUUID();
  (raw as IncomingMessage & { id?: string }).id = id;
  return id;
}
