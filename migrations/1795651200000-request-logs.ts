import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The request log (CONTRACT §8 usage) and the record that makes consumers idempotent.
 *
 * Against the seed design: partitioned by day on `created_at` (the worker creates each day's
 * partition before writing to it and drops those past REQUEST_LOG_RETENTION_DAYS: dropping a
 * partition is instant where a DELETE of millions of rows is not); no surrogate id (nothing
 * refers to a row, and a partitioned table's unique keys must include the partition key);
 * `route` is the route template, not the raw path (no ids or search text in it); `error_code` is
 * the problem's stable code, not its message (which may quote the caller's input); `user_id` as
 * well as `api_key_id`; `timestamptz(3)`; no foreign keys (a deleted key keeps its history).
 *
 * `processed_messages`: one row per message a consumer has applied, written in the same
 * transaction as its effect, so a message delivered twice has its effect once.
 */
export class RequestLogs1795651200000 implements MigrationInterface {
  name = 'RequestLogs1795651200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE request_logs (
        created_at  timestamptz(3) NOT NULL,
        request_id  varchar(128) NOT NULL,
        api_key_id  uuid,
        user_id     uuid,
        method      varchar(10) NOT NULL,
        route       varchar(500) NOT NULL,
        status_code smallint NOT NULL,
        duration_ms real NOT NULL,
        ip          inet,
        user_agent  varchar(500),
        error_code  varchar(64)
      ) PARTITION BY RANGE (created_at)`);
    await q.query(`CREATE INDEX request_logs_created_at ON request_logs (created_at)`);
    await q.query(
      `CREATE INDEX request_logs_api_key ON request_logs (api_key_id, created_at)
         WHERE api_key_id IS NOT NULL`,
    );
    await q.query(`
      CREATE TABLE processed_messages (
        consumer     varchar(100) NOT NULL,
        message_id   varchar(200) NOT NULL,
        processed_at timestamptz(3) NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, message_id)
      )`);
    await q.query(
      `CREATE INDEX processed_messages_processed_at ON processed_messages (processed_at)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE processed_messages`);
    await q.query(`DROP TABLE request_logs`);
  }
}
