import type { AppConfig } from '@app/config';
import { QUEUES, jobQueueTopology, queueDeclarations, queueName } from '@app/messaging';
import { connect } from 'amqplib';

/** Deletes every queue the worker declares under `config`'s prefix (for specs' own prefixes). */
export async function deleteJobQueues(config: AppConfig): Promise<void> {
  const amqp = await connect(config.rabbitmq.url);
  try {
    const channel = await amqp.createChannel();
    for (const queue of Object.values(QUEUES)) {
      const topology = jobQueueTopology(config, queueName(config, queue));
      for (const { queue: name } of queueDeclarations(topology)) await channel.deleteQueue(name);
    }
  } finally {
    await amqp.close();
  }
}
