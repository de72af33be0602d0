import type { DataSource, EntityManager } from 'typeorm';

/**
 * Claims `messageId` for `consumer` inside the caller's transaction: true the first time, false
 * if it was processed before. Written in the same transaction as the message's effect, so either
 * both commit or neither does: a message delivered twice has its effect once.
 */
export async function claimMessage(
  manager: EntityManager,
  consumer: string,
  messageId: string,
): Promise<boolean> {
  const rows: unknown[] = await manager.query(
    `INSERT INTO processed_messages (consumer, message_id) VALUES ($1, $2)
     ON CONFLICT DO NOTHING RETURNING 1`,
    [consumer, messageId],
  );
  return rows.length === 1;
}

/** Forgets claims older than `days`: a message redelivered later than that would apply twice. */
export async function forgetProcessedMessages(
  dataSource: DataSource,
  days: number,
): Promise<number> {
  const [, deleted] = await dataSource.query<[unknown, number]>(
    `DELETE FROM processed_messages WHERE processed_at < now() - make_interval(days => $1)`,
    [days],
  );
  return deleted;
}
