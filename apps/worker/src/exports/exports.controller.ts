import { AppConfig, InjectConfig } from '@app/config';
import { type ExportJobMessage, Job, TASK_EXPORT, attemptOf } from '@app/messaging';
import { Controller, Logger } from '@nestjs/common';
import { Ctx, Payload, RmqContext } from '@nestjs/microservices';
import { TaskExporter } from './task-exporter';

@Controller()
export class ExportsController {
  private readonly logger = new Logger('Exports');

  constructor(
    @InjectConfig() private readonly config: AppConfig,
    private readonly exporter: TaskExporter,
  ) {}

  /**
   * One attempt at an export. A failure is recorded on the job (waiting for its retry, or
   * `failed` after the last attempt) and thrown for JobServer to retry or dead-letter it.
   */
  @Job(TASK_EXPORT)
  async export(@Payload() message: ExportJobMessage, @Ctx() context: RmqContext): Promise<void> {
    try {
      await this.exporter.run(message.jobId);
    } catch (error) {
      const last = attemptOf(context) >= this.config.jobs.maxAttempts;
      await this.exporter.failed(message.jobId, last).catch((cause: unknown) =>
        // The job then shows its last state until a retry runs (or, after the last attempt,
        // until it is deleted); the message itself is retried or dead-lettered all the same.
        this.logger.warn(`could not record a failed export (${message.jobId}): ${String(cause)}`),
      );
      throw error;
    }
  }
}
