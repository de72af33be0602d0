import type { AppConfig } from '@app/config';
import { RmqOptions, Transport } from '@nestjs/microservices';
import { JobServer, JobServerHooks } from './job-server';
import { jobQueueTopology, mainQueueArguments, queueName, type QueueName } from './topology';

/**
 * Consumer options. The RMQ transport's defaults are unsafe for jobs (auto-ack, transient
 * messages, unlimited prefetch), so every one is set: durable queue, persistent messages, manual
 * acks (JobServer acks when the handler is done), a prefetch limit, and the queue's dead-letter
 * arguments (the publisher declares the queue with the same options, as the broker requires).
 */
export function rmqServerOptions(config: AppConfig, queue: QueueName): RmqOptions {
  const topology = jobQueueTopology(config, queueName(config, queue));
  return {
    transport: Transport.RMQ,
    options: {
      urls: [config.rabbitmq.url],
      queue: topology.queue,
      queueOptions: { durable: true, arguments: mainQueueArguments(topology) },
      noAck: false,
      prefetchCount: config.rabbitmq.prefetch,
      persistent: true,
      socketOptions: { heartbeatIntervalInSeconds: 15, reconnectTimeInSeconds: 2 },
    },
  };
}

/** The worker's consumer of `queue`: Nest's RMQ transport with retries and dead-lettering. */
export function jobServer(config: AppConfig, queue: QueueName, hooks: JobServerHooks): JobServer {
  const { options } = rmqServerOptions(config, queue) as Required<RmqOptions>;
  return new JobServer(
    options,
    jobQueueTopology(config, queueName(config, queue)),
    queue,
    config.jobs.maxAttempts,
    hooks,
  );
}
