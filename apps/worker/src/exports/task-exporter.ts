import { AppConfig, InjectConfig } from '@app/config';
import {
  type ExportParams,
  TASK_COLUMNS,
  type TaskEntity,
  filterTasks,
  toTaskResource,
} from '@app/database';
import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ENCODERS } from './export-encoders';
import { ResultChunks } from './result-chunks';

/** What a job's user reads when it failed: the cause (in the logs) may name our internals. */
export const EXPORT_FAILED = 'The export could not be completed. Ask for a new one.';
const CURSOR = 'task_export';
/** How often the worker gives up on abandoned jobs and deletes expired ones. */
const SWEEP_EVERY_MS = 3_600_000;
/**
 * An unfinished job that has not moved for this long is given up on (`failed`): its last attempt
 * failed while Postgres could not record it, or its message was dead-lettered unrun (a worker
 * died with it on its last attempt). A running export records its progress every fetch, and a
 * retry waits at most JOB_RETRY_MAX_MS (5 minutes by default), so a live job moves far sooner.
 */
const ABANDONED_AFTER_MINUTES = 60;

/**
 * Runs `tasks.export` jobs (CONTRACT §4). One run, in one transaction:
 *
 * 1. claims the job (`running`), unless it already finished or is gone (a repeated message);
 * 2. counts the rows the filter selects, for progress;
 * 3. opens a Postgres cursor over them (its snapshot is taken once, so the file is one
 *    consistent view of the tasks, however long it takes) and fetches EXPORT_FETCH_SIZE rows at
 *    a time, encodes them and writes the text into result chunks, recording its progress after
 *    each fetch (outside the transaction, so pollers see it);
 * 4. writes the last chunk and marks the job `succeeded` in the same transaction as the chunks.
 *
 * A run that fails or dies leaves no partial file: its transaction rolls back, and the job's
 * retry starts again from the beginning.
 */
@Injectable()
export class TaskExporter implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Exports');
  private timer: NodeJS.Timeout | undefined;

  constructor(
    @InjectConfig() private readonly config: AppConfig,
    private readonly dataSource: DataSource,
  ) {}

  onApplicationBootstrap(): void {
    const sweep = () =>
      this.sweep().catch((error: unknown) =>
        this.logger.warn(`could not sweep the jobs, tried again in an hour: ${String(error)}`),
      );
    void sweep();
    this.timer = setInterval(() => void sweep(), SWEEP_EVERY_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** Runs the export; returns the rows written, or undefined when there was nothing to do. */
  async run(jobId: string): Promise<number | undefined> {
    // An UPDATE answers [rows, count].
    const [[claimed]] = await this.dataSource.query<
      [Array<{ user_id: string; params: ExportParams }>, number]
    >(
      `UPDATE jobs SET status = 'running', attempts = attempts + 1,
         started_at = coalesce(started_at, now()), progress = 0, processed_rows = 0,
         version = version + 1, updated_at = now()
       WHERE id = $1 AND status IN ('queued', 'running')
       RETURNING user_id, params`,
      [jobId],
    );
    if (!claimed) return undefined;
    const { format, filter } = claimed.params;
    const encoder = ENCODERS[format];
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    try {
      await runner.startTransaction();
      const [countSql, countParameters] = filterTasks(
        this.dataSource.createQueryBuilder().select('count(*)::int', 'total').from('tasks', 't'),
        claimed.user_id,
        filter,
      ).getQueryAndParameters();
      const [{ total }] = (await runner.query(countSql, countParameters)) as Array<{
        total: number;
      }>;
      const [sql, parameters] = filterTasks(
        this.dataSource.createQueryBuilder().select(TASK_COLUMNS).from('tasks', 't'),
        claimed.user_id,
        filter,
      )
        // The list's default order: newest first, id as the tie-breaker.
        .orderBy('t.created_at', 'DESC')
        .addOrderBy('t.id', 'DESC')
        .getQueryAndParameters();
      await runner.query(`DECLARE ${CURSOR} NO SCROLL CURSOR FOR ${sql}`, parameters);
      const chunks = new ResultChunks(runner, jobId);
      await chunks.write(encoder.head);
      let processed = 0;
      for (;;) {
        const rows = (await runner.query(
          `FETCH ${this.config.exports.fetchSize} FROM ${CURSOR}`,
        )) as TaskEntity[];
        if (rows.length === 0) break;
        await chunks.write(encoder.encode(rows.map(toTaskResource)));
        processed += rows.length;
        await this.progress(jobId, processed, total);
      }
      await chunks.end();
      const [, finished] = (await runner.query(
        `UPDATE jobs SET status = 'succeeded', progress = 100, processed_rows = $2,
           total_rows = $2, result_bytes = $3, error = NULL, finished_at = now(),
           expires_at = now() + make_interval(hours => $4), version = version + 1,
           updated_at = now()
         WHERE id = $1 AND status = 'running'`,
        [jobId, processed, chunks.bytes, this.config.exports.resultTtlHours],
      )) as [unknown, number];
      // Finished meanwhile by another run of the same message (a redelivery), or deleted.
      if (finished !== 1) {
        await runner.rollbackTransaction();
        return undefined;
      }
      await runner.commitTransaction();
      return processed;
    } catch (error) {
      if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
      throw error;
    } finally {
      await runner.release();
    }
  }

  /**
   * A run failed: the job waits for its retry (`queued`), or after the last attempt is `failed`
   * with a message for its user, and expires like a finished one.
   */
  async failed(jobId: string, last: boolean): Promise<void> {
    await this.dataSource.query(
      last
        ? `UPDATE jobs SET status = 'failed', error = $2, finished_at = now(),
             expires_at = now() + make_interval(hours => $3), version = version + 1,
             updated_at = now()
           WHERE id = $1 AND status IN ('queued', 'running')`
        : `UPDATE jobs SET status = 'queued', version = version + 1, updated_at = now()
           WHERE id = $1 AND status IN ('queued', 'running')`,
      last ? [jobId, EXPORT_FAILED, this.config.exports.resultTtlHours] : [jobId],
    );
  }

  /**
   * Fails the jobs abandoned for ABANDONED_AFTER_MINUTES (so that no poller waits for ever), and
   * deletes those past their expiry with their results (the chunks cascade).
   */
  async sweep(): Promise<{ abandoned: number; deleted: number }> {
    const [, abandoned] = await this.dataSource.query<[unknown, number]>(
      `UPDATE jobs SET status = 'failed', error = $1, finished_at = now(),
         expires_at = now() + make_interval(hours => $2), version = version + 1,
         updated_at = now()
       WHERE status IN ('queued', 'running')
         AND updated_at < now() - make_interval(mins => $3)`,
      [EXPORT_FAILED, this.config.exports.resultTtlHours, ABANDONED_AFTER_MINUTES],
    );
    const [, deleted] = await this.dataSource.query<[unknown, number]>(
      `DELETE FROM jobs WHERE expires_at < now()`,
    );
    return { abandoned, deleted };
  }

  /** Percent done; 100 only once the file is whole (tasks added since the count may exceed it). */
  private async progress(jobId: string, processed: number, total: number): Promise<void> {
    const percent = Math.min(99, total === 0 ? 99 : Math.floor((processed * 100) / total));
    await this.dataSource.query(
      `UPDATE jobs SET progress = $2, processed_rows = $3, total_rows = $4,
         version = version + 1, updated_at = now()
       WHERE id = $1 AND status = 'running'`,
      [jobId, percent, processed, total],
    );
  }
}
