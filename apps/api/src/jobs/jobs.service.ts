import type { Principal } from '@app/auth';
import { type ExportParams, JobEntity } from '@app/database';
import { ApiException, notFound } from '@app/http';
import { type ExportJobMessage, QUEUES, TASK_EXPORT, addToOutbox } from '@app/messaging';
import { DegradationFlags } from '@app/resilience';
import { Injectable, StreamableFile } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { Readable } from 'node:stream';
import { DataSource, Repository } from 'typeorm';
import {
  IdempotencyRequest,
  IdempotencyService,
  IdempotentResult,
} from '../common/idempotency.service';
import { ExportAcceptedDto, ExportTasksDto, JobDto } from './dto/job.dto';

const MEDIA_TYPES: Record<ExportParams['format'], string> = {
  csv: 'text/csv; charset=utf-8',
  ndjson: 'application/x-ndjson',
};

/**
 * Background jobs the caller asked for (CONTRACT §4): task exports, dispatched through the
 * outbox in the job's own transaction (so a job exists if and only if its message will be
 * published, whatever RabbitMQ's state), run by the worker, and their results.
 */
@Injectable()
export class JobsService {
  constructor(
    @InjectRepository(JobEntity) private readonly jobs: Repository<JobEntity>,
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly idempotency: IdempotencyService,
    private readonly flags: DegradationFlags,
  ) {}

  exportTasks(
    principal: Principal,
    dto: ExportTasksDto,
    idempotency: IdempotencyRequest,
  ): Promise<IdempotentResult<ExportAcceptedDto>> {
    this.flags.ensure('exports');
    const params: ExportParams = { format: dto.format, filter: { ...dto.filter } };
    return this.idempotency.run(principal.userId, idempotency, async (manager) => {
      const [{ id }] = await manager.query<Array<{ id: string }>>(
        `INSERT INTO jobs (user_id, type, params) VALUES ($1, 'tasks.export', $2) RETURNING id`,
        [principal.userId, JSON.stringify(params)],
      );
      const message: ExportJobMessage = { jobId: id };
      await addToOutbox(manager, QUEUES.exports, TASK_EXPORT, message);
      return { jobId: id };
    });
  }

  async get(principal: Principal, id: string): Promise<JobDto> {
    return JobDto.from(await this.owned(principal, id));
  }

  /** The finished file, streamed chunk by chunk from Postgres (one chunk in memory at a time). */
  async result(principal: Principal, id: string): Promise<StreamableFile> {
    const job = await this.owned(principal, id);
    if (job.status === 'failed') {
      throw new ApiException('JOB_FAILED', `The job failed, so it has no result: ${job.error}`);
    }
    if (job.status !== 'succeeded') {
      throw new ApiException(
        'JOB_NOT_FINISHED',
        `The job is ${job.status}; its result is ready once GET /v1/jobs/${id} says succeeded.`,
      );
    }
    const { format } = job.params;
    return new StreamableFile(Readable.from(this.chunks(id), { objectMode: false }), {
      type: MEDIA_TYPES[format],
      disposition: `attachment; filename="tasks-${id}.${format}"`,
      length: Number(job.resultBytes),
    });
  }

  /** The caller's job; another user's, or one past its expiry, is 404. */
  private async owned(principal: Principal, id: string): Promise<JobEntity> {
    const job = await this.jobs.findOneBy({ id, userId: principal.userId });
    if (!job || (job.expiresAt !== null && job.expiresAt.getTime() <= Date.now())) {
      throw notFound('Job');
    }
    return job;
  }

  private async *chunks(jobId: string): AsyncGenerator<Buffer> {
    for (let seq = 0; ; seq += 1) {
      const [chunk] = await this.dataSource.query<Array<{ data: Buffer }>>(
        `SELECT data FROM job_result_chunks WHERE job_id = $1 AND seq = $2`,
        [jobId, seq],
      );
      if (!chunk) return;
      yield chunk.data;
    }
  }
}
