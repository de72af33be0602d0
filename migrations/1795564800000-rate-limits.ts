import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Administrators' per-client rate limits (CONTRACT §6). Against the seed design: the identifier
 * is the key (one override per client), checked to be one of `key:`, `user:` or `ip:`; no burst
 * limit (the sliding window has none to give); and `updated_at`, so that an override's history
 * is not lost to an upsert.
 */
export class RateLimits1795564800000 implements MigrationInterface {
  name = 'RateLimits1795564800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE rate_limit_configs (
        identifier          varchar(200) PRIMARY KEY,
        requests_per_minute integer NOT NULL,
        reason              varchar(500),
        expires_at          timestamptz(3),
        created_at          timestamptz(3) NOT NULL DEFAULT now(),
        updated_at          timestamptz(3) NOT NULL DEFAULT now(),
        CONSTRAINT rate_limit_configs_identifier_kind CHECK (identifier ~ '^(key|user|ip):.+$'),
        CONSTRAINT rate_limit_configs_rpm_positive CHECK (requests_per_minute > 0)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE rate_limit_configs`);
  }
}
