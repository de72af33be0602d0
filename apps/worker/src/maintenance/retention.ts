import { forgetExpiredIdempotencyKeys, forgetProcessedMessages } from '@app/database';
import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** How often the worker deletes the bookkeeping rows that have served their time. */
const SWEEP_EVERY_MS = 3_600_000;
/**
 * Message claims are kept this long: longer than any retry path (JOB_RETRY_MAX_MS × attempts),
 * and than an operator takes to replay a dead-lettered batch.
 */
const PROCESSED_MESSAGES_KEPT_DAYS = 14;

/**
 * Deletes, at start and then hourly, the rows that only exist to make something happen once:
 * message claims past PROCESSED_MESSAGES_KEPT_DAYS and Idempotency-Keys past their 24 h. Every
 * worker runs it; the deletes are the same whoever runs them.
 */
@Injectable()
export class Retention implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Retention');
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly dataSource: DataSource) {}

  onApplicationBootstrap(): void {
    const sweep = () =>
      this.sweep().catch((error: unknown) =>
        this.logger.warn(`could not delete expired rows, tried again in an hour: ${String(error)}`),
      );
    void sweep();
    this.timer = setInterval(() => void sweep(), SWEEP_EVERY_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** Answers how many rows of each kind were deleted. */
  async sweep(): Promise<{ processedMessages: number; idempotencyKeys: number }> {
    return {
      processedMessages: await forgetProcessedMessages(
        this.dataSource,
        PROCESSED_MESSAGES_KEPT_DAYS,
      ),
      idempotencyKeys: await forgetExpiredIdempotencyKeys(this.dataSource),
    };
  }
}
