import { loadConfig } from '@app/config';
import {
  ATTEMPT_HEADER,
  Job,
  JobOutcome,
  Publisher,
  QUEUES,
  jobQueueTopology,
  jobServer,
  queueName,
} from '@app/messaging';
import { eventually } from '@app/testing';
import { Controller, INestMicroservice, Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { CustomStrategy, Ctx, Payload, RmqContext } from '@nestjs/microservices';
import { type Channel, type ChannelModel, connect } from 'amqplib';
import type { Message } from 'amqplib';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { breakersFor } from './breakers';

/** What the spec's handlers saw: one entry per run of a handler. */
interface Run {
  pattern: string;
  id: string;
  attempt: number;
  at: number;
}
const runs: Run[] = [];
/** How many times each id's handler still fails before it succeeds. */
const failuresLeft = new Map<string, number>();
const slowMs = 300;

function note(pattern: string, id: string, context: RmqContext): void {
  const message = context.getMessage() as Message;
  const attempt = Number(message.properties.headers?.[ATTEMPT_HEADER] ?? 1);
  runs.push({ pattern, id, attempt, at: Date.now() });
}

@Controller()
class SpecJobs {
  @Job('spec.ok')
  ok(@Payload() data: { id: string }, @Ctx() context: RmqContext): void {
    note('spec.ok', data.id, context);
  }

  @Job('spec.flaky')
  flaky(@Payload() data: { id: string }, @Ctx() context: RmqContext): void {
    note('spec.flaky', data.id, context);
    const left = failuresLeft.get(data.id) ?? 0;
    if (left > 0) {
      failuresLeft.set(data.id, left - 1);
      throw new Error(`flaky: ${left} failures to go`);
    }
  }

  @Job('spec.poison')
  async poison(@Payload() data: { id: string }, @Ctx() context: RmqContext): Promise<void> {
    note('spec.poison', data.id, context);
    await sleep(1);
    throw new Error('poison: this job always fails');
  }

  @Job('spec.slow')
  async slow(@Payload() data: { id: string }, @Ctx() context: RmqContext): Promise<void> {
    await sleep(slowMs);
    note('spec.slow', data.id, context);
  }
}

@Module({ controllers: [SpecJobs] })
class SpecJobsModule {}

/**
 * The worker's consumer machinery (libs/messaging JobServer) against the real RabbitMQ: acks on
 * success, retries with backoff, dead-lettering after the delivery limit and for unknown
 * patterns, redeliveries counted as attempts, and a close that finishes what is in flight.
 * The handlers are the spec's own; the queue, the publisher and the server are the product's.
 */
describe('jobs over RabbitMQ (JobServer)', () => {
  const base = loadConfig();
  const config = loadConfig({
    RABBITMQ_QUEUE_PREFIX: `${base.rabbitmq.queuePrefix}jobs-${randomUUID()}.`,
    JOB_MAX_ATTEMPTS: '3',
    JOB_RETRY_BASE_MS: '100',
    RABBITMQ_PREFETCH: '10',
  });
  const topology = jobQueueTopology(config, queueName(config, QUEUES.jobs));
  const outcomes: Array<{ queue: string; outcome: JobOutcome }> = [];
  let worker: INestMicroservice | undefined;
  let publisher: Publisher;
  let amqp: ChannelModel;
  let channel: Channel;
  const breakers = breakersFor(config);

  async function startWorker(): Promise<INestMicroservice> {
    const app = await NestFactory.createMicroservice<CustomStrategy>(SpecJobsModule, {
      strategy: jobServer(config, QUEUES.jobs, {
        outcome: (queue, outcome) => outcomes.push({ queue, outcome }),
      }),
      logger: false,
    });
    await app.listen();
    return app;
  }

  const publish = (pattern: string, id: string) => publisher.publish(QUEUES.jobs, pattern, { id });
  const runsOf = (id: string) => runs.filter((run) => run.id === id);
  const count = (outcome: JobOutcome) => outcomes.filter((o) => o.outcome === outcome).length;
  /** Waits until `check` holds (then the spec asserts what it waited for), `ms` at most. */
  const until = (check: () => boolean, ms: number) =>
    eventually(() => Promise.resolve(check()), Boolean, ms);

  async function drain(queue: string): Promise<Message[]> {
    const messages: Message[] = [];
    const next = () => channel.get(queue, { noAck: true });
    for (let message = await next(); message; message = await next()) messages.push(message);
    return messages;
  }

  beforeAll(async () => {
    Logger.overrideLogger(false);
    publisher = new Publisher(config, breakers);
    amqp = await connect(config.rabbitmq.url);
    channel = await amqp.createChannel();
    worker = await startWorker();
  });

  afterEach(() => {
    runs.length = 0;
    outcomes.length = 0;
  });

  afterAll(async () => {
    await worker?.close();
    await publisher.onApplicationShutdown();
    breakers.onApplicationShutdown();
    for (const queue of [topology.queue, topology.dead, ...topology.retries.map((r) => r.queue)]) {
      await channel.deleteQueue(queue);
    }
    await amqp.close();
  });

  it('declares the queue, its dead-letter queue and one retry queue per backoff delay', async () => {
    expect(topology.retries.map((r) => r.delayMs)).toEqual([100, 200]);
    for (const queue of [topology.queue, topology.dead, ...topology.retries.map((r) => r.queue)]) {
      await expect(channel.checkQueue(queue)).resolves.toMatchObject({ queue });
    }
  });

  it('runs a job once and acks it', async () => {
    const id = randomUUID();
    await publish('spec.ok', id);
    await until(() => runsOf(id).length === 1, 5000);
    await sleep(200);
    expect(runsOf(id)).toHaveLength(1);
    expect(count('succeeded')).toBe(1);
    expect(await channel.checkQueue(topology.queue)).toMatchObject({ messageCount: 0 });
  });

  it('tries a failing job again after a backoff, and succeeds on the third attempt', async () => {
    const id = randomUUID();
    failuresLeft.set(id, 2);
    await publish('spec.flaky', id);
    await until(() => runsOf(id).length === 3, 10_000);
    const seen = runsOf(id);
    expect(seen.map((run) => run.attempt)).toEqual([1, 2, 3]);
    // Each wait is the tier's delay less up to half of it (jitter): at least 50, then 100 ms.
    expect(seen[1].at - seen[0].at).toBeGreaterThanOrEqual(50);
    expect(seen[2].at - seen[1].at).toBeGreaterThanOrEqual(100);
    await sleep(300);
    expect(runsOf(id)).toHaveLength(3);
    expect([count('retried'), count('succeeded'), count('dead_lettered')]).toEqual([2, 1, 0]);
    expect(await drain(topology.dead)).toHaveLength(0);
  });

  it('dead-letters a poison job after the delivery limit while other jobs keep flowing', async () => {
    const poison = randomUUID();
    await publish('spec.poison', poison);
    const others = Array.from({ length: 50 }, () => randomUUID());
    for (const id of others) await publish('spec.ok', id);
    await until(() => count('dead_lettered') === 1, 10_000);
    expect(others.every((id) => runsOf(id).length === 1)).toBe(true);
    expect(runsOf(poison).map((run) => run.attempt)).toEqual([1, 2, 3]);
    const dead = await drain(topology.dead);
    expect(dead).toHaveLength(1);
    expect(JSON.parse(dead[0].content.toString())).toEqual({
      pattern: 'spec.poison',
      data: { id: poison },
    });
    expect(dead[0].properties.headers).toMatchObject({
      [ATTEMPT_HEADER]: 3,
      'x-last-error': 'poison: this job always fails',
    });
    expect(dead[0].properties.deliveryMode).toBe(2);
  });

  it('dead-letters a job whose pattern has no handler, at once', async () => {
    await publisher.publish(QUEUES.jobs, 'spec.nobody-handles-this', { id: 'unknown' });
    const dead = await eventually(
      () => drain(topology.dead),
      (messages) => messages.length === 1,
      5000,
    );
    expect(JSON.parse(dead[0].content.toString())).toMatchObject({
      pattern: 'spec.nobody-handles-this',
    });
    expect(count('dead_lettered')).toBe(1);
    expect(await channel.checkQueue(topology.queue)).toMatchObject({ messageCount: 0 });
  });

  it('counts a redelivery as a failed attempt: a job that killed its worker is not run again at once', async () => {
    // No worker for a moment: a consumer of the spec's own takes the job and dies without an
    // ack, as a worker killed mid-job would.
    await worker!.close();
    worker = undefined;
    const id = randomUUID();
    await publish('spec.ok', id);
    const taker = await amqp.createChannel();
    const taken = await eventually(
      () => taker.get(topology.queue),
      (message) => message !== false,
      5000,
    );
    expect(taken).not.toBe(false);
    await taker.close(); // unacked: the broker requeues it, marked redelivered

    worker = await startWorker();
    await until(() => runsOf(id).length === 1, 5000);
    expect(runsOf(id)[0].attempt).toBe(2);
    expect([count('retried'), count('succeeded')]).toEqual([1, 1]);
  });

  it('on close, stops consuming and finishes and acks the jobs in flight', async () => {
    const ids = Array.from({ length: 5 }, () => randomUUID());
    for (const id of ids) await publish('spec.slow', id);
    // All five taken (prefetch 10) and running.
    await eventually(
      () => channel.checkQueue(topology.queue),
      (state) => state.messageCount === 0,
      5000,
    );
    await worker!.close();
    worker = undefined;
    expect(ids.map((id) => runsOf(id).length)).toEqual([1, 1, 1, 1, 1]);
    expect(count('succeeded')).toBe(5);
    // Acked before the channel closed: nothing went back to the queue.
    expect(await channel.checkQueue(topology.queue)).toMatchObject({
      messageCount: 0,
      consumerCount: 0,
    });
    worker = await startWorker();
  });
});
