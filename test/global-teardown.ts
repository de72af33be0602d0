// Drops what global-setup made: the run's database, Redis keys and RabbitMQ queues. TypeScript,
// loaded by Jest outside the @app/* mapping: it imports only modules whose own imports are types
// (the configuration, the queue topology), so the queues deleted are the ones the code declares.
import amqp from 'amqplib';
import Redis from 'ioredis';
import { Client } from 'pg';
/* eslint-disable no-restricted-imports -- Jest loads this file without the @app/* mapping */
import { loadConfig } from '../libs/config/src/config';
import { declaredQueueNames } from '../libs/messaging/src/topology';
/* eslint-enable no-restricted-imports */

export default async function globalTeardown(): Promise<void> {
  const run = JSON.parse(process.env.TASKHUB_TEST_RUN || 'null');
  if (!run) return;
  const admin = new Client({ connectionString: run.admin });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${run.database}" WITH (FORCE)`);
  await admin.end();

  // The run's configuration: its prefixes, and the default job settings the queues are named by.
  const config = loadConfig();
  const redis = new Redis(config.redis.url, { lazyConnect: true });
  try {
    await redis.connect();
    const stream = redis.scanStream({ match: `${config.redis.keyPrefix}*`, count: 500 });
    for await (const keys of stream as AsyncIterable<string[]>) {
      if (keys.length) await redis.del(...keys);
    }
  } finally {
    redis.disconnect();
  }

  // Every queue an app of this run declares (apis declare the job queues they publish to, with
  // their retry and dead-letter queues); specs with job settings or prefixes of their own delete
  // theirs (test/queues.ts).
  const connection = await amqp.connect(config.rabbitmq.url);
  try {
    const channel = await connection.createChannel();
    for (const name of declaredQueueNames(config)) await channel.deleteQueue(name);
    await channel.close();
  } finally {
    await connection.close();
  }
}
