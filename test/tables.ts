import type { DataSource } from 'typeorm';

/** Every table a request to the api can write to. */
export const WRITABLE_TABLES = [
  'users',
  'refresh_tokens',
  'tasks',
  'categories',
  'api_keys',
  'webhooks',
  'jobs',
  'outbox',
  'idempotency_keys',
  'rate_limit_configs',
];

/**
 * A fingerprint of every row of those tables: equal before and after a request that must change
 * nothing (a refused one), different after any insert, update or delete.
 */
export function tablesDigest(db: DataSource): Promise<string[]> {
  return Promise.all(
    WRITABLE_TABLES.map(async (table) => {
      const [{ sum }] = await db.query<{ sum: string | null }[]>(
        `SELECT md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))) AS sum FROM ${table} t`,
      );
      return `${table}:${sum}`;
    }),
  );
}
