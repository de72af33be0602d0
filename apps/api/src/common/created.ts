import type { FastifyReply } from 'fastify';
import type { IdempotentResult } from './idempotency.service';

/** Headers of a 201: Location of the new resource, and whether this is a replay. */
export function created<T extends { id: string }>(
  reply: FastifyReply,
  collectionPath: string,
  result: IdempotentResult<T>,
): T {
  reply.header('location', `${collectionPath}/${result.body.id}`);
  if (result.replayed) reply.header('idempotent-replayed', 'true');
  return result.body;
}
