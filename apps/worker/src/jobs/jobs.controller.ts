import { Controller } from '@nestjs/common';
import { Ctx, MessagePattern, RmqContext } from '@nestjs/microservices';
import type { Channel, Message } from 'amqplib';

/**
 * The worker's message handlers. The real consumers (request logs, webhooks, exports, outbox)
 * arrive with the jobs issue; `worker.ping` lets a client prove the path end to end: published,
 * consumed, answered, and acked by hand (the queue is consumed with manual acks).
 */
@Controller()
export class JobsController {
  @MessagePattern('worker.ping')
  ping(@Ctx() context: RmqContext): { pong: true; at: string } {
    const channel = context.getChannelRef() as Channel;
    channel.ack(context.getMessage() as Message);
    return { pong: true, at: new Date().toISOString() };
  }
}
