import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The transactional outbox: a message to publish, written in the same transaction as the change
 * it announces, so either both happen or neither does; the worker's relay publishes pending rows
 * and marks them (see libs/messaging outbox-relay.ts). `message_id` is the AMQP message id that
 * idempotent consumers claim. Published rows are kept a day, for inspection, then deleted.
 */
export class Outbox1795737600000 implements MigrationInterface {
  name = 'Outbox1795737600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE outbox (
        id           bigserial PRIMARY KEY,
        message_id   uuid NOT NULL DEFAULT gen_random_uuid(),
        queue        varchar(100) NOT NULL,
        pattern      varchar(100) NOT NULL,
        payload      jsonb NOT NULL,
        created_at   timestamptz(3) NOT NULL DEFAULT now(),
        published_at timestamptz(3)
      )`);
    // What the relay reads, oldest first: only the pending rows are in it.
    await q.query(`CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL`);
    await q.query(
      `CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE outbox`);
  }
}
