import type { AppConfig } from '@app/config';
import { declaredQueueNames } from '@app/messaging';
import { connect } from 'amqplib';

/** Deletes every queue the apps declare under `config`'s prefix (for specs' own prefixes). */
export async function deleteJobQueues(config: AppConfig): Promise<void> {
  const amqp = await connect(config.rabbitmq.url);
  try {
    const channel = await amqp.createChannel();
    for (const name of declaredQueueNames(config)) await channel.deleteQueue(name);
  } finally {
    await amqp.close();
  }
}
