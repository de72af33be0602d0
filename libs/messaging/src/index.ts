export { ATTEMPT_HEADER, JOB_OUTCOMES } from './job-server';
export { TASK_EXPORT } from './exports';
export type { ExportJobMessage } from './exports';
export { Job, attemptOf } from './job.decorator';
export type { JobOutcome } from './job-server';
export { MessagingModule } from './messaging.module';
export { addToOutbox } from './outbox';
export { OutboxRelay } from './outbox-relay';
export { OutboxModule } from './outbox.module';
export { Publisher } from './publisher';
export { REQUEST_LOG_BATCH, requestLogEntries } from './request-log';
export type { RequestLogBatch, RequestLogEntry } from './request-log';
export { jobServer, rmqServerOptions } from './rmq-options';
export {
  declaredQueueNames,
  jobQueueTopology,
  QUEUES,
  queueDeclarations,
  queueName,
} from './topology';
export type { QueueName } from './topology';
