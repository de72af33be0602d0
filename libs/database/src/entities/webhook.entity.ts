import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** A user's subscription to task events (CONTRACT §5). */
@Entity({ name: 'webhooks' })
export class WebhookEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @Column({ type: 'varchar', length: 2048 })
  url!: string;

  @Column({ type: 'text', array: true })
  events!: string[];

  /** The signing secret, encrypted (libs/webhooks WebhookSecrets): never returned. */
  @Column({ type: 'bytea', select: false })
  secret!: Buffer;

  /** A disabled subscription gets no new deliveries (those already made still go). */
  @Column({ type: 'boolean', default: true })
  enabled!: boolean;

  /** After a rotation, the secret before it, encrypted: it signs too until it expires. */
  @Column({ name: 'previous_secret', type: 'bytea', nullable: true, select: false })
  previousSecret!: Buffer | null;

  @Column({ name: 'previous_secret_expires_at', type: 'timestamptz', precision: 3, nullable: true })
  previousSecretExpiresAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;
}
