import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/**
 * An administrator's rate limit for one client (CONTRACT §6), in force over its tier's until
 * `expiresAt`. The identifier is the client's own (`key:<apiKeyId>`, `user:<userId>`,
 * `ip:<address>`), so there is at most one override per client; the database checks its form.
 */
@Entity({ name: 'rate_limit_configs' })
export class RateLimitConfigEntity {
  @PrimaryColumn({ type: 'varchar', length: 200 })
  identifier!: string;

  @Column({ name: 'requests_per_minute', type: 'integer' })
  requestsPerMinute!: number;

  @Column({ type: 'varchar', length: 500, nullable: true })
  reason!: string | null;

  /** Null: never. An expired override stays stored, and stops applying. */
  @Column({ name: 'expires_at', type: 'timestamptz', precision: 3, nullable: true })
  expiresAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz', precision: 3 })
  updatedAt!: Date;
}
