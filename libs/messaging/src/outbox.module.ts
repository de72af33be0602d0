import { Module } from '@nestjs/common';
import { makeGaugeProvider } from '@willsoto/nestjs-prometheus';
import { MessagingModule } from './messaging.module';
import { OutboxRelay } from './outbox-relay';

/** The outbox relay, for the worker (needs the database and the breakers). */
@Module({
  imports: [MessagingModule],
  providers: [
    OutboxRelay,
    makeGaugeProvider({
      name: 'outbox_pending',
      help: 'Outbox rows not yet published to RabbitMQ (counted each second by the relay).',
    }),
  ],
})
export class OutboxModule {}
