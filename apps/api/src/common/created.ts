import type { FastifyReply } from 'fastify';
import type { IdempotentResult } from './idempotency.service';

/** The headers of an answer that names a resource: its Location, and whether it is a replay. */
export function located<T>(reply: FastifyReply, result: IdempotentResult<T>, location: string): T {
  reply.header('location', location);
  if (result.replayed) reply.header('idempotent-replayed', 'true');
  return result.body;
}

/** The headers of a 201: Location of the new resource, and whether this is a replay. */
export function created<T extends { id: string }>(
  reply: FastifyReply,
  result: IdempotentResult<T>,
): T {
  const collection = reply.request.url.split('?')[0] ?? '';
  return located(reply, result, `${collection}/${result.body.id}`);
}
