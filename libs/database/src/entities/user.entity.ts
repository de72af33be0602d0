import {
  Column,
  CreateDateColumn,
  Entity,
  PrimaryGeneratedColumn,
  UpdateDateColumn,
} from 'typeorm';

export const USER_ROLES = ['user', 'admin'] as const;
export type UserRole = (typeof USER_ROLES)[number];

/** Tiers a user or API key can hold; `anonymous` is for callers with no identity. */
export const TIERS = ['anonymous', 'free', 'pro', 'enterprise'] as const;
export type Tier = (typeof TIERS)[number];
/** Tiers a user or a key can be given: `anonymous` is only for callers with no identity. */
export const ASSIGNABLE_TIERS = TIERS.filter((tier) => tier !== 'anonymous');

@Entity({ name: 'users' })
export class UserEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  /** Stored lower-cased and trimmed; unique. */
  @Column({ type: 'varchar', length: 320 })
  email!: string;

  @Column({ type: 'varchar', length: 100 })
  name!: string;

  @Column({ name: 'password_hash', type: 'text', select: false })
  passwordHash!: string;

  @Column({ type: 'enum', enum: USER_ROLES, enumName: 'user_role', default: 'user' })
  role!: UserRole;

  @Column({ type: 'enum', enum: TIERS, enumName: 'tier', default: 'free' })
  tier!: Tier;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz', precision: 3 })
  updatedAt!: Date;
}
