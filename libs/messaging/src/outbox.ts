import { connectionOf } from '@app/database';
import type { EntityManager } from 'typeorm';
import type { QueueName } from './topology';

/**
 * Adds a message to the transactional outbox, in the caller's transaction: it is published (by
 * the worker's OutboxRelay) if and only if that transaction commits, whether or not RabbitMQ is
 * up at the time. Returns its message id, which its consumers can claim to apply it once.
 * A prepared statement on the transaction's connection: every write of the api makes one.
 */
export async function addToOutbox(
  manager: EntityManager,
  queue: QueueName,
  pattern: string,
  payload: unknown,
): Promise<string> {
  const { rows } = await connectionOf(manager).query<{ message_id: string }>({
    name: 'outbox_add',
    text: 'INSERT INTO outbox (queue, pattern, payload) VALUES ($1, $2, $3) RETURNING message_id',
    values: [queue, pattern, JSON.stringify(payload)],
  });
  return rows[0].message_id;
}
