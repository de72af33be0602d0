import type { AppConfig } from '@app/config';
import { RmqOptions, Transport } from '@nestjs/microservices';

/** Queues the worker consumes. Later issues add request-logs, webhooks, exports and outbox. */
export const QUEUES = { jobs: 'jobs' } as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/** The broker-side name: RABBITMQ_QUEUE_PREFIX keeps test runs and environments apart. */
export const queueName = (config: AppConfig, queue: QueueName): string =>
  `${config.rabbitmq.queuePrefix}${queue}`;

/**
 * Consumer options. The RMQ transport's defaults are unsafe for jobs (auto-ack, transient
 * messages, unlimited prefetch), so every one is set: durable queue, persistent messages, manual
 * acks (a handler acks when its work is done), and a prefetch limit.
 */
export function rmqServerOptions(config: AppConfig, queue: QueueName): RmqOptions {
  return {
    transport: Transport.RMQ,
    options: {
      urls: [config.rabbitmq.url],
      queue: queueName(config, queue),
      queueOptions: { durable: true },
      noAck: false,
      prefetchCount: config.rabbitmq.prefetch,
      persistent: true,
      socketOptions: { heartbeatIntervalInSeconds: 15, reconnectTimeInSeconds: 2 },
    },
  };
}
