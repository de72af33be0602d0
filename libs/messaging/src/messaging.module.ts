import { Module } from '@nestjs/common';
import { Publisher } from './publisher';

/** Publishing to the worker's queues (Publisher). Needs the global ResilienceModule's Breakers. */
@Module({ providers: [Publisher], exports: [Publisher] })
export class MessagingModule {}
