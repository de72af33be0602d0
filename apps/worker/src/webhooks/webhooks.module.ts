import { Module } from '@nestjs/common';
import { WebhookFanout } from './webhook-fanout';
import { WebhookSender } from './webhook-sender';
import { WebhooksController } from './webhooks.controller';

/** Task events to webhook deliveries, and the deliveries themselves (CONTRACT §5). */
@Module({
  controllers: [WebhooksController],
  providers: [WebhookFanout, WebhookSender],
})
export class WebhooksModule {}
