import { AppConfig, loadConfig } from '@app/config';
import { OutboxRelay, Publisher, QUEUES, addToOutbox, queueName } from '@app/messaging';
import type { Breakers } from '@app/resilience';
import { FaultProxy, eventually } from '@app/testing';
import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { type Channel, type ChannelModel, type Message, connect } from 'amqplib';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Gauge, Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { startApi } from './app';
import { breakersFor } from './breakers';
import { dropDatabase, ownDatabase } from './databases';

const { name: DATABASE, url: DATABASE_URL } = ownDatabase('outbox');
const base = loadConfig();

/**
 * The transactional outbox (libs/messaging) on the real Postgres and RabbitMQ: a message is
 * published if and only if its transaction commits, once per row with relays side by side, and
 * a RabbitMQ outage leaves rows waiting, not lost, until it heals. The relays are built here
 * around a database of the spec's own and queues of its own.
 */
describe('the transactional outbox', () => {
  let app: NestFastifyApplication;
  let db: DataSource;
  let amqp: ChannelModel;
  let channel: Channel;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    Logger.overrideLogger(false);
    app = await startApi({ DATABASE_URL }); // creates and migrates the database
    db = app.get(DataSource);
    amqp = await connect(base.rabbitmq.url);
    channel = await amqp.createChannel();
  });

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await amqp.close();
    await app.close();
    await dropDatabase(DATABASE);
  });

  /** A relay publishing to queues of its own (a fresh prefix), and what it needs. */
  function relay(overrides: Record<string, string> = {}): {
    relay: OutboxRelay;
    queue: string;
    pending: Gauge<string>;
  } {
    const config: AppConfig = loadConfig({
      DATABASE_URL,
      RABBITMQ_QUEUE_PREFIX: `${base.rabbitmq.queuePrefix}outbox-${randomUUID()}.`,
      OUTBOX_BATCH_SIZE: '50',
      OUTBOX_POLL_MS: '20',
      ...overrides,
    });
    const breakers: Breakers = breakersFor(config);
    const publisher = new Publisher(config, breakers);
    const pending = new Gauge({
      name: 'outbox_pending',
      help: 'spec',
      registers: [new Registry()],
    });
    const queue = queueName(config, QUEUES.jobs);
    cleanups.push(async () => {
      await publisher.onApplicationShutdown();
      breakers.onApplicationShutdown();
      await channel.deleteQueue(queue);
    });
    return { relay: new OutboxRelay(config, db, publisher, pending), queue, pending };
  }

  async function drain(queue: string): Promise<Message[]> {
    const messages: Message[] = [];
    const next = () => channel.get(queue, { noAck: true });
    for (let message = await next(); message; message = await next()) messages.push(message);
    return messages;
  }

  const write = (payload: unknown) =>
    db.transaction((manager) => addToOutbox(manager, QUEUES.jobs, 'spec.event', payload));

  it('publishes a message if and only if its transaction commits, once', async () => {
    const { relay: one, queue } = relay();
    const rolledBack = randomUUID();
    await expect(
      db.transaction(async (manager) => {
        await addToOutbox(manager, QUEUES.jobs, 'spec.event', { n: rolledBack });
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    const messageId = await write({ n: 'committed' });

    expect(await one.relayOnce()).toBe(1);
    expect(await one.relayOnce()).toBe(0);
    // Confirmed by the broker before the row was marked: in the queue already.
    const [message, ...more] = await drain(queue);
    expect(more).toHaveLength(0);
    expect(message.properties.messageId).toBe(messageId);
    expect(message.properties.deliveryMode).toBe(2);
    expect(JSON.parse(message.content.toString())).toEqual({
      pattern: 'spec.event',
      data: { n: 'committed' },
    });
    const [row] = await db.query<Array<{ published_at: Date | null }>>(
      `SELECT published_at FROM outbox WHERE message_id = $1`,
      [messageId],
    );
    expect(row.published_at).toBeInstanceOf(Date);
  });

  it('with two relays side by side, publishes each of 500 rows exactly once', async () => {
    const first = relay();
    // Both relays publish to the same queue: the second uses the first's prefix.
    const prefix = first.queue.slice(0, -QUEUES.jobs.length);
    const second = relay({ RABBITMQ_QUEUE_PREFIX: prefix });
    const ids = new Set<string>();
    await db.transaction(async (manager) => {
      for (let n = 0; n < 500; n += 1)
        ids.add(await addToOutbox(manager, QUEUES.jobs, 'spec.event', { n }));
    });
    const run = async (r: OutboxRelay) => {
      let total = 0;
      for (let got = await r.relayOnce(); got > 0; got = await r.relayOnce()) total += got;
      return total;
    };
    const [byFirst, bySecond] = await Promise.all([run(first.relay), run(second.relay)]);
    expect(byFirst + bySecond).toBe(500);
    expect(byFirst).toBeGreaterThan(0);
    expect(bySecond).toBeGreaterThan(0);
    const seen = (await drain(first.queue)).map((m) => String(m.properties.messageId));
    expect(seen).toHaveLength(500);
    expect(new Set(seen)).toEqual(ids);
  });

  it('with RabbitMQ cut, rows wait (bounded passes, outbox_pending) and drain once it heals', async () => {
    const broker = new URL(base.rabbitmq.url);
    const proxy = await FaultProxy.start({
      host: broker.hostname,
      port: Number(broker.port || 5672),
    });
    cleanups.push(() => proxy.close());
    const proxied = new URL(base.rabbitmq.url);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    await proxy.set({ kind: 'blackhole' });
    const cut = relay({
      RABBITMQ_URL: proxied.toString(),
      BREAKER_RABBITMQ_TIMEOUT_MS: '300',
      BREAKER_VOLUME_THRESHOLD: '5',
      BREAKER_RESET_TIMEOUT_MS: '500',
    });

    // The write path does not touch RabbitMQ: it commits whatever the broker's state.
    const ids = new Set<string>();
    for (let n = 0; n < 20; n += 1) ids.add(await write({ n }));
    const started = performance.now();
    expect(await cut.relay.relayOnce()).toBe(0);
    // The breaker's 300 ms, not a hang.
    expect(performance.now() - started).toBeLessThan(2000);
    expect(await cut.relay.countPending()).toBe(20);
    expect((await cut.pending.get()).values[0].value).toBe(20);

    await proxy.set({ kind: 'pass' });
    cut.relay.onApplicationBootstrap(); // the relay's own loop, as the worker runs it
    try {
      expect(
        await eventually(
          () => cut.relay.countPending(),
          (n) => n === 0,
          30_000,
          100,
        ),
      ).toBe(0);
    } finally {
      await cut.relay.beforeApplicationShutdown();
    }
    // Every row is in the queue: a row is marked only once the broker confirmed it. (A publish
    // that timed out during the cut may add a copy: the same message id, for consumers to claim.)
    const all = new Set((await drain(cut.queue)).map((m) => String(m.properties.messageId)));
    expect(all).toEqual(ids);
  });
});
