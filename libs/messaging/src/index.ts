export { Publisher } from './publisher';
export { QUEUES, queueName, rmqServerOptions } from './rmq-options';
export type { QueueName } from './rmq-options';
