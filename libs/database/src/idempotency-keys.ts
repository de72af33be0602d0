import type { DataSource, EntityManager } from 'typeorm';

/** How long the first response to a create with an Idempotency-Key is kept and replayed. */
export const IDEMPOTENCY_KEY_TTL_HOURS = 24;

/** How many expired keys one statement deletes: short transactions, whatever has piled up. */
const BATCH = 5_000;

/**
 * Deletes the keys past IDEMPOTENCY_KEY_TTL_HOURS, a batch at a time (through the created_at
 * index), and answers how many. An expired key is also replaced when it is reused; this keeps the
 * table to about a day of creates when keys are not reused.
 */
export async function forgetExpiredIdempotencyKeys(
  db: DataSource | EntityManager,
): Promise<number> {
  let total = 0;
  for (;;) {
    const [, deleted] = await db.query<[unknown, number]>(
      `DELETE FROM idempotency_keys WHERE (user_id, key) IN (
         SELECT user_id, key FROM idempotency_keys
          WHERE created_at < now() - make_interval(hours => $1) LIMIT $2)`,
      [IDEMPOTENCY_KEY_TTL_HOURS, BATCH],
    );
    total += deleted;
    if (deleted < BATCH) return total;
  }
}
