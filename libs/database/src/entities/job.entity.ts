import {
  Column,
  CreateDateColumn,
  Entity,
  PrimaryGeneratedColumn,
  UpdateDateColumn,
} from 'typeorm';
import type { TaskFilter } from '../tasks';

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const JOB_TYPES = ['tasks.export'] as const;
export type JobType = (typeof JOB_TYPES)[number];

export const EXPORT_FORMATS = ['csv', 'ndjson'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** What a `tasks.export` job was asked for. */
export interface ExportParams {
  format: ExportFormat;
  filter: TaskFilter;
}

/** A background job a user asked for and polls (CONTRACT §4); see the jobs migration. */
@Entity({ name: 'jobs' })
export class JobEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @Column({ type: 'varchar', length: 50 })
  type!: JobType;

  @Column({ type: 'jsonb' })
  params!: ExportParams;

  @Column({ type: 'varchar', length: 20 })
  status!: JobStatus;

  /** Percent done, 0 to 100. */
  @Column({ type: 'smallint' })
  progress!: number;

  @Column({ name: 'total_rows', type: 'integer', nullable: true })
  totalRows!: number | null;

  @Column({ name: 'processed_rows', type: 'integer' })
  processedRows!: number;

  @Column({ type: 'integer' })
  attempts!: number;

  /** Why it failed, in words for its user (never a stack or SQL). */
  @Column({ type: 'varchar', length: 500, nullable: true })
  error!: string | null;

  @Column({ name: 'result_bytes', type: 'bigint', nullable: true })
  resultBytes!: string | null;

  @Column({ type: 'integer' })
  version!: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', precision: 3 })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz', precision: 3 })
  updatedAt!: Date;

  @Column({ name: 'started_at', type: 'timestamptz', precision: 3, nullable: true })
  startedAt!: Date | null;

  @Column({ name: 'finished_at', type: 'timestamptz', precision: 3, nullable: true })
  finishedAt!: Date | null;

  @Column({ name: 'expires_at', type: 'timestamptz', precision: 3, nullable: true })
  expiresAt!: Date | null;
}
