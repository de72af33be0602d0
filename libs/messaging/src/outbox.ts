import type { EntityManager } from 'typeorm';
import type { QueueName } from './topology';

/**
 * Adds a message to the transactional outbox, in the caller's transaction: it is published (by
 * the worker's OutboxRelay) if and only if that transaction commits, whether or not RabbitMQ is
 * up at the time. Returns its message id, which its consumers can claim to apply it once.
 */
export async function addToOutbox(
  manager: EntityManager,
  queue: QueueName,
  pattern: string,
  payload: unknown,
): Promise<string> {
  const [row] = await manager.query<Array<{ message_id: string }>>(
    `INSERT INTO outbox (queue, pattern, payload) VALUES ($1, $2, $3) RETURNING message_id`,
    [queue, pattern, JSON.stringify(payload)],
  );
  return row.message_id;
}
