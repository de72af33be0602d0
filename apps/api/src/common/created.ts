import type { FastifyReply } from 'fastify';
import type { IdempotentResult } from './idempotency.service';

/** The headers of a 201: Location of the new resource, and whether this is a replay. */
export function created<T extends { id: string }>(
  reply: FastifyReply,
  result: IdempotentResult<T>,
): T {
  const collection = reply.request.url.split('?')[0] ?? '';
  reply.header('location', `${collection}/${result.body.id}`);
  if (result.replayed) reply.header('idempotent-replayed', 'true');
  return result.body;
}
