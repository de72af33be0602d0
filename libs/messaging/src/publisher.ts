import { AppConfig, InjectConfig } from '@app/config';
import { Breakers } from '@app/resilience';
import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { ClientRMQ, RmqRecordBuilder } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { rmqServerOptions } from './rmq-options';
import { type QueueName, queueName } from './topology';

/**
 * Publishes events to the worker's queues through the RMQ transport's client, and through the
 * `rabbitmq` circuit breaker: a publish resolves once the broker has confirmed it (the client's
 * channel is a confirm channel), fails with 503 DEPENDENCY_TIMEOUT past
 * BREAKER_RABBITMQ_TIMEOUT_MS, with 503 DEPENDENCY_UNAVAILABLE when the broker cannot be reached
 * (refused, reset, reconnecting), and while the breaker is open fails at once with 503
 * DEPENDENCY_UNAVAILABLE instead of waiting on a broker that is down.
 *
 * A publish that timed out may still reach the queue later (the client keeps it and sends it on
 * reconnection), so callers that retry must publish what an idempotent consumer can take twice.
 * Messages are persistent, to durable queues declared as the worker declares them.
 */
@Injectable()
export class Publisher implements OnApplicationShutdown {
  private readonly clients = new Map<QueueName, ClientRMQ>();

  constructor(
    @InjectConfig() private readonly config: AppConfig,
    private readonly breakers: Breakers,
  ) {}

  /**
   * `messageId` names the message for idempotent consumers: a publish retried with the same id
   * (after a timeout that may have delivered it after all) has its effect once.
   */
  publish(
    queue: QueueName,
    pattern: string,
    data: unknown,
    options: { messageId?: string } = {},
  ): Promise<void> {
    const record =
      options.messageId === undefined
        ? data
        : new RmqRecordBuilder(data).setOptions({ messageId: options.messageId }).build();
    return this.breakers.run('rabbitmq', () =>
      firstValueFrom(this.client(queue).emit(pattern, record), { defaultValue: undefined }).catch(
        (error: unknown) => {
          // Not connected, the channel closed, a nack: the broker's trouble, a 503.
          throw this.breakers.unreachable(
            'rabbitmq',
            error instanceof Error ? error : new Error(String(error)),
          );
        },
      ),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.clients.values()].map((client) => client.close()));
    this.clients.clear();
  }

  private client(queue: QueueName): ClientRMQ {
    let client = this.clients.get(queue);
    if (client === undefined) {
      const { options } = rmqServerOptions(this.config, queue);
      client = new ClientRMQ({
        urls: options?.urls,
        queue: queueName(this.config, queue),
        queueOptions: options?.queueOptions,
        persistent: true,
        socketOptions: options?.socketOptions,
      });
      this.clients.set(queue, client);
    }
    return client;
  }
}
