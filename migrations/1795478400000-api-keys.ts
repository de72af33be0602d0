import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * API keys, and the index of the admins' list of users.
 *
 * Only the SHA-256 of a key is kept (its plaintext is shown once, at creation), with a
 * display prefix. Revoked keys stay, for the record, but leave the owner's list.
 *
 * Against the seed design: the hash is bytea(32), not hex text; `scopes` can only hold known
 * scopes and at least one; `tier` is NULL when the key follows its owner's tier; the per-key
 * rate-limit override lives with the other overrides (the rate-limit issue), not here.
 */
export class ApiKeys1795478400000 implements MigrationInterface {
  name = 'ApiKeys1795478400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE api_keys (
        id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        name         varchar(100) NOT NULL,
        prefix       varchar(16) NOT NULL,
        key_hash     bytea NOT NULL,
        scopes       text[] NOT NULL,
        tier         tier,
        expires_at   timestamptz(3),
        last_used_at timestamptz(3),
        revoked_at   timestamptz(3),
        created_at   timestamptz(3) NOT NULL DEFAULT now(),
        CONSTRAINT api_keys_hash_length CHECK (octet_length(key_hash) = 32),
        CONSTRAINT api_keys_scopes_known CHECK (
          cardinality(scopes) > 0 AND scopes <@ ARRAY[
            'tasks:read', 'tasks:write', 'categories:read', 'categories:write', 'exports:write',
            'webhooks:read', 'webhooks:write', 'admin'
          ]::text[]
        )
      )`);
    // Verification looks a key up by its hash.
    await q.query(`CREATE UNIQUE INDEX api_keys_hash_key ON api_keys (key_hash)`);
    // The owner's list: live keys, newest first, keyset on (created_at, id).
    await q.query(
      `CREATE INDEX api_keys_user_created_idx ON api_keys (user_id, created_at, id)
        WHERE revoked_at IS NULL`,
    );
    // GET /v1/admin/users pages through every user by (created_at, id).
    await q.query(`CREATE INDEX users_created_idx ON users (created_at, id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX users_created_idx`);
    await q.query(`DROP TABLE api_keys`);
  }
}
