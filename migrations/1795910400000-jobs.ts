import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Background jobs a user asked for and polls (CONTRACT §4 exports), and their results.
 *
 * - `jobs`: one row per job, owned by its user; `params` is what was asked (an export's format
 *   and filter). `version` is bumped by every change, so `GET /v1/jobs/:id` has a strong ETag
 *   and a poller gets 304 until something moved. `expires_at` is set when the job finishes; the
 *   worker deletes expired jobs with their results.
 * - `job_result_chunks`: the result file in pieces of at most 1 MiB, in order. They are written
 *   in the same transaction that marks the job succeeded, so a result is whole or absent: a
 *   worker that dies mid-export leaves nothing for its retry to trip on.
 */
export class Jobs1795910400000 implements MigrationInterface {
  name = 'Jobs1795910400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE jobs (
        id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        type           varchar(50) NOT NULL,
        params         jsonb NOT NULL,
        status         varchar(20) NOT NULL DEFAULT 'queued'
                       CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
        progress       smallint NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
        total_rows     integer,
        processed_rows integer NOT NULL DEFAULT 0,
        attempts       integer NOT NULL DEFAULT 0,
        error          varchar(500),
        result_bytes   bigint,
        version        integer NOT NULL DEFAULT 1,
        created_at     timestamptz(3) NOT NULL DEFAULT now(),
        updated_at     timestamptz(3) NOT NULL DEFAULT now(),
        started_at     timestamptz(3),
        finished_at    timestamptz(3),
        expires_at     timestamptz(3)
      )`);
    // Deleting a user deletes their jobs: the cascade looks them up by user.
    await q.query(`CREATE INDEX jobs_user ON jobs (user_id)`);
    await q.query(`CREATE INDEX jobs_expires_at ON jobs (expires_at) WHERE expires_at IS NOT NULL`);
    await q.query(`
      CREATE TABLE job_result_chunks (
        job_id uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        seq    integer NOT NULL CHECK (seq >= 0),
        data   bytea NOT NULL,
        PRIMARY KEY (job_id, seq)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE job_result_chunks`);
    await q.query(`DROP TABLE jobs`);
  }
}
