import { registerUser, type TestUser } from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { Retention } from '../apps/worker/src/maintenance/retention';
import { startApi } from './app';

/**
 * The worker's hourly retention: Idempotency-Keys past their 24 h and message claims past 14 days
 * are deleted, and nothing younger (the README's promise; before, expired keys were only replaced
 * when reused, and kept for ever otherwise).
 */
describe('retention of bookkeeping rows', () => {
  let app: NestFastifyApplication;
  let db: DataSource;
  let user: TestUser;
  beforeAll(async () => {
    app = await startApi({ RATE_LIMIT_ENABLED: 'false' });
    db = app.get(DataSource);
    user = await registerUser(app);
  });
  afterAll(() => app.close());

  const keyAged = (hours: number) =>
    db.query(
      `INSERT INTO idempotency_keys (user_id, key, request_hash, created_at)
       VALUES ($1, $2, '\\x00', now() - make_interval(hours => $3)) RETURNING key`,
      [user.id, `retention-${randomUUID()}`, hours],
    );
  const claimAged = (days: number) =>
    db.query(
      `INSERT INTO processed_messages (consumer, message_id, processed_at)
       VALUES ('retention-spec', $1, now() - make_interval(days => $2)) RETURNING message_id`,
      [randomUUID(), days],
    );

  it('deletes keys past 24 h and claims past 14 days, in batches, and keeps the younger', async () => {
    const [[fresh], [nearly]] = [await keyAged(1), await keyAged(23)];
    // More than one batch (5 000) of expired keys.
    await db.query(
      `INSERT INTO idempotency_keys (user_id, key, request_hash, created_at)
       SELECT $1, 'old-' || n, '\\x00', now() - interval '25 hours' FROM generate_series(1, 5200) n`,
      [user.id],
    );
    const [[recent], [old]] = [await claimAged(13), await claimAged(15)];

    const swept = await new Retention(db).sweep();

    expect(swept.idempotencyKeys).toBeGreaterThanOrEqual(5200);
    expect(swept.processedMessages).toBeGreaterThanOrEqual(1);
    const keys = await db.query<{ key: string }[]>(
      `SELECT key FROM idempotency_keys WHERE user_id = $1 ORDER BY key`,
      [user.id],
    );
    expect(keys.map((row) => row.key).sort()).toEqual([fresh.key, nearly.key].sort());
    const claims = await db.query<{ message_id: string }[]>(
      `SELECT message_id FROM processed_messages WHERE consumer = 'retention-spec'`,
    );
    expect(claims.map((row) => row.message_id)).toEqual([recent.message_id]);
    expect(old.message_id).not.toBe(recent.message_id);
  });
});
