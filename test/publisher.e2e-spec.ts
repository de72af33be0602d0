import { loadConfig } from '@app/config';
import { Publisher, QUEUES, queueName } from '@app/messaging';
import type { Breakers } from '@app/resilience';
import { FaultProxy, eventually } from '@app/testing';
import { Logger } from '@nestjs/common';
import { type Channel, type ChannelModel, connect } from 'amqplib';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { breakersFor } from './breakers';

/**
 * Publishing to the worker's queues against the real RabbitMQ, reached through a FaultProxy so
 * the broker can be cut: confirmed persistent messages when it is up; bounded, then immediate,
 * failures through the rabbitmq breaker when it is not; publishing again once it heals.
 */
describe('Publisher (real RabbitMQ, through the rabbitmq breaker)', () => {
  const base = loadConfig();
  let proxy: FaultProxy;
  let breakers: Breakers;
  let publisher: Publisher;
  let amqp: ChannelModel;
  let channel: Channel;
  let queue: string;

  beforeAll(async () => {
    // No app here to route Nest's logger to pino: the client's reconnection errors would flood.
    Logger.overrideLogger(false);
    const broker = new URL(base.rabbitmq.url);
    proxy = await FaultProxy.start({ host: broker.hostname, port: Number(broker.port || 5672) });
    const proxied = new URL(base.rabbitmq.url);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    const config = loadConfig({
      RABBITMQ_URL: proxied.toString(),
      // A queue of this spec's own.
      RABBITMQ_QUEUE_PREFIX: `${base.rabbitmq.queuePrefix}publisher-${randomUUID()}.`,
      BREAKER_RABBITMQ_TIMEOUT_MS: '300',
      BREAKER_VOLUME_THRESHOLD: '3',
      BREAKER_RESET_TIMEOUT_MS: '1000',
    });
    breakers = breakersFor(config);
    publisher = new Publisher(config, breakers);
    queue = queueName(config, QUEUES.jobs);
    // The spec itself reads the queue directly, not through the proxy.
    amqp = await connect(base.rabbitmq.url);
    channel = await amqp.createChannel();
  });

  afterAll(async () => {
    await publisher.onApplicationShutdown();
    breakers.onApplicationShutdown();
    await channel.deleteQueue(queue);
    await amqp.close();
    await proxy.close();
  });

  it('publishes persistent messages to the durable queue, each confirmed before it resolves', async () => {
    for (let n = 0; n < 20; n += 1) await publisher.publish(QUEUES.jobs, 'spec.event', { n });
    // Confirmed: every one is in the queue by the time its publish resolved.
    expect((await channel.checkQueue(queue)).messageCount).toBe(20);
    const first = await channel.get(queue, { noAck: true });
    expect(first && first.properties.deliveryMode).toBe(2); // persistent
    expect(first && JSON.parse(first.content.toString())).toEqual({
      pattern: 'spec.event',
      data: { n: 0 },
    });
    await channel.purgeQueue(queue);
  });

  it('with the broker cut, publishing fails within the timeout, then at once; healed, it goes through', async () => {
    await proxy.set({ kind: 'blackhole' });
    const started = performance.now();
    await expect(publisher.publish(QUEUES.jobs, 'spec.event', { n: 'cut' })).rejects.toMatchObject({
      code: 'DEPENDENCY_TIMEOUT',
    });
    // The breaker's 300 ms, not a hang.
    expect(performance.now() - started).toBeLessThan(1500);

    const state = await eventually(
      async () => {
        await publisher.publish(QUEUES.jobs, 'spec.event', { n: 'cut' }).catch(() => undefined);
        return breakers.stateOf('rabbitmq');
      },
      (current) => current === 'open',
      10_000,
    );
    expect(state).toBe('open');
    const rejects = () => breakers.list().find((b) => b.name === 'rabbitmq')!.window.rejects;
    const before = rejects();
    await expect(publisher.publish(QUEUES.jobs, 'spec.event', { n: 'cut' })).rejects.toMatchObject({
      code: 'DEPENDENCY_UNAVAILABLE',
      headers: { 'retry-after': '1' },
    });
    // Refused by the breaker: never handed to the client.
    expect(rejects() - before).toBe(1);

    await proxy.set({ kind: 'pass' });
    // The client reconnects; a half-open probe succeeds and the breaker closes.
    const healed = await eventually(
      () =>
        publisher.publish(QUEUES.jobs, 'spec.event', { n: 'healed' }).then(
          () => 'published',
          () => 'failed',
        ),
      (outcome) => outcome === 'published',
      20_000,
      200,
    );
    expect(healed).toBe('published');
    expect(breakers.stateOf('rabbitmq')).toBe('closed');
    const delivered: unknown[] = [];
    for (let message = await channel.get(queue, { noAck: true }); message;) {
      delivered.push(JSON.parse(message.content.toString()).data);
      message = await channel.get(queue, { noAck: true });
    }
    expect(delivered).toContainEqual({ n: 'healed' });
  });
});
