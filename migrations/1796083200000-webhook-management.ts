import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Webhooks that can be managed: `enabled` (a disabled subscription gets no new deliveries), and
 * the previous signing secret, which keeps signing beside the new one until
 * `previous_secret_expires_at` after a rotation (Standard Webhooks sends several signatures).
 */
export class WebhookManagement1796083200000 implements MigrationInterface {
  name = 'WebhookManagement1796083200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE webhooks
        ADD COLUMN enabled boolean NOT NULL DEFAULT true,
        ADD COLUMN previous_secret bytea,
        ADD COLUMN previous_secret_expires_at timestamptz(3),
        ADD CONSTRAINT webhooks_previous_secret_expires
          CHECK ((previous_secret IS NULL) = (previous_secret_expires_at IS NULL))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE webhooks
        DROP CONSTRAINT webhooks_previous_secret_expires,
        DROP COLUMN previous_secret_expires_at,
        DROP COLUMN previous_secret,
        DROP COLUMN enabled`);
  }
}
