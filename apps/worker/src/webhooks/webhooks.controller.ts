import { AppConfig, InjectConfig } from '@app/config';
import { Job, attemptOf } from '@app/messaging';
import { TASK_EVENT, TaskEvent, WEBHOOK_DELIVERY, WebhookDeliveryJob } from '@app/webhooks';
import { Controller } from '@nestjs/common';
import { Ctx, Payload, RmqContext } from '@nestjs/microservices';
import { WebhookFanout } from './webhook-fanout';
import { WebhookSender } from './webhook-sender';

@Controller()
export class WebhooksController {
  constructor(
    @InjectConfig() private readonly config: AppConfig,
    private readonly fanout: WebhookFanout,
    private readonly sender: WebhookSender,
  ) {}

  /** A task change (from the outbox): a delivery for each subscription to it. */
  @Job(TASK_EVENT)
  async taskEvent(@Payload() event: TaskEvent): Promise<void> {
    await this.fanout.fanOut(event);
  }

  /**
   * One attempt at a delivery. A failure is thrown for JobServer to retry it after a backoff,
   * or dead-letter it after the last attempt (the delivery then lists as `failed`).
   */
  @Job(WEBHOOK_DELIVERY)
  async deliver(@Payload() job: WebhookDeliveryJob, @Ctx() context: RmqContext): Promise<void> {
    const last = attemptOf(context) >= this.config.jobs.maxAttempts;
    const outcome = await this.sender.attempt(job.deliveryId, last);
    // Delivered; or nothing left to do (settled before, subscription gone); or a refused
    // target, recorded as failed: trying again would change nothing.
    if (outcome.delivered || outcome.error === undefined || (outcome.final && !last)) return;
    throw new Error(`webhook delivery failed: ${outcome.error}`);
  }
}
