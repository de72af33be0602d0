export { ATTEMPT_HEADER, JOB_OUTCOMES } from './job-server';
export { Job } from './job.decorator';
export type { JobOutcome } from './job-server';
export { Publisher } from './publisher';
export { QUEUES, jobServer, queueName, rmqServerOptions } from './rmq-options';
export type { QueueName } from './rmq-options';
export { jobQueueTopology } from './topology';
