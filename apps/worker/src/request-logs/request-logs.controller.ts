import { Job, REQUEST_LOG_BATCH, type RequestLogBatch } from '@app/messaging';
import { Controller } from '@nestjs/common';
import { Ctx, Payload, RmqContext } from '@nestjs/microservices';
import type { Message } from 'amqplib';
import { RequestLogStore } from './request-log.store';

@Controller()
export class RequestLogsController {
  constructor(private readonly requestLogs: RequestLogStore) {}

  /** A batch of the api's request log (its message id makes storing it idempotent). */
  @Job(REQUEST_LOG_BATCH)
  async store(@Payload() batch: RequestLogBatch, @Ctx() context: RmqContext): Promise<void> {
    const messageId = (context.getMessage() as Message).properties.messageId as unknown;
    if (typeof messageId !== 'string' || messageId === '') {
      throw new Error('a request log batch without a message id cannot be stored exactly once');
    }
    await this.requestLogs.store(messageId, batch);
  }
}
