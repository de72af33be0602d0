import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Webhook subscriptions and their deliveries (CONTRACT §5). A subscription's signing secret is
 * stored encrypted (it must be read back to sign; see libs/webhooks secrets.ts). A delivery is
 * one event for one subscription: its id is the `Webhook-Id` the receiver dedupes by, the same
 * on every attempt; (webhook_id, event_id) is unique, so fanning an event out twice makes no
 * second delivery. Deleting a subscription deletes its deliveries.
 */
export class Webhooks1795824000000 implements MigrationInterface {
  name = 'Webhooks1795824000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE webhooks (
        id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        url        varchar(2048) NOT NULL,
        events     text[] NOT NULL CHECK (cardinality(events) > 0),
        secret     bytea NOT NULL,
        created_at timestamptz(3) NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX webhooks_user ON webhooks (user_id, created_at DESC, id DESC)`);
    await q.query(`
      CREATE TABLE webhook_deliveries (
        id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        webhook_id       uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
        event_id         uuid NOT NULL,
        event_type       varchar(50) NOT NULL,
        payload          jsonb NOT NULL,
        status           varchar(20) NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'succeeded', 'failed')),
        attempts         integer NOT NULL DEFAULT 0,
        last_status_code integer,
        last_error       varchar(500),
        created_at       timestamptz(3) NOT NULL DEFAULT now(),
        updated_at       timestamptz(3) NOT NULL DEFAULT now(),
        delivered_at     timestamptz(3),
        UNIQUE (webhook_id, event_id)
      )`);
    await q.query(
      `CREATE INDEX webhook_deliveries_list ON webhook_deliveries (webhook_id, created_at DESC, id DESC)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE webhook_deliveries`);
    await q.query(`DROP TABLE webhooks`);
  }
}
