import type { QueryRunner } from 'typeorm';

/** A result is stored in pieces of this size (the last may be shorter). */
export const CHUNK_BYTES = 1024 * 1024;

/**
 * Writes a job's result to `job_result_chunks` in CHUNK_BYTES pieces as it is produced, so the
 * worker holds at most one piece and one batch in memory whatever the export's size. It writes
 * through the caller's transaction: the chunks commit with the job's success, or not at all.
 */
export class ResultChunks {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private seq = 0;
  /** Bytes written so far, and pending. */
  bytes = 0;

  constructor(
    private readonly runner: QueryRunner,
    private readonly jobId: string,
  ) {}

  async write(text: string): Promise<void> {
    if (text === '') return;
    const data = Buffer.from(text, 'utf8');
    this.pending.push(data);
    this.pendingBytes += data.length;
    this.bytes += data.length;
    if (this.pendingBytes < CHUNK_BYTES) return;
    let buffered = Buffer.concat(this.pending);
    while (buffered.length >= CHUNK_BYTES) {
      await this.insert(buffered.subarray(0, CHUNK_BYTES));
      buffered = buffered.subarray(CHUNK_BYTES);
    }
    this.pending = buffered.length > 0 ? [buffered] : [];
    this.pendingBytes = buffered.length;
  }

  /** Writes what is left. */
  async end(): Promise<void> {
    if (this.pendingBytes > 0) await this.insert(Buffer.concat(this.pending));
    this.pending = [];
    this.pendingBytes = 0;
  }

  private async insert(data: Buffer): Promise<void> {
    await this.runner.query(
      `INSERT INTO job_result_chunks (job_id, seq, data) VALUES ($1, $2, $3)`,
      [this.jobId, this.seq, data],
    );
    this.seq += 1;
  }
}
