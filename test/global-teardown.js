// Drops what global-setup made: the run's database, Redis keys and RabbitMQ queues.
const { Client } = require('pg');
const Redis = require('ioredis');
const amqp = require('amqplib');

module.exports = async function globalTeardown() {
  const run = JSON.parse(process.env.TASKHUB_TEST_RUN || 'null');
  if (!run) return;
  const admin = new Client({ connectionString: run.admin });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${run.database}" WITH (FORCE)`);
  await admin.end();

  const redis = new Redis(process.env.REDIS_URL || 'redis://localhost:6379', { lazyConnect: true });
  try {
    await redis.connect();
    const stream = redis.scanStream({ match: `${process.env.REDIS_KEY_PREFIX}*`, count: 500 });
    for await (const keys of stream) if (keys.length) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }

  const connection = await amqp.connect(
    process.env.RABBITMQ_URL || 'amqp://guest:guest@localhost:5672',
  );
  try {
    const channel = await connection.createChannel();
    // The worker's queues and, with the default JOB_* settings, their dead-letter and retry queues
    // (libs/messaging/src/topology.ts); specs with settings of their own remove their queues.
    const queues = ['jobs', 'request-logs'].flatMap((queue) => [
      queue,
      `${queue}.dead`,
      ...[1, 2, 4, 8].map((s) => `${queue}.retry.${s * 1000}ms`),
    ]);
    for (const queue of queues)
      await channel.deleteQueue(`${process.env.RABBITMQ_QUEUE_PREFIX}${queue}`);
    await channel.close();
  } finally {
    await connection.close();
  }
};
