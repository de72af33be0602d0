export { QUEUES, queueName, rmqServerOptions } from './rmq-options';
