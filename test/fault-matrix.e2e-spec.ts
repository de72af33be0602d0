import { loadConfig } from '@app/config';
import { Publisher, QUEUES, queueName } from '@app/messaging';
import type { Breakers } from '@app/resilience';
import {
  FaultProxy,
  type Fault,
  type Reply,
  type TestUser,
  call,
  createTask,
  eventually,
  registerUser,
} from '@app/testing';
import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { connect } from 'amqplib';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { startApi } from './app';
import { proxiedDatabase } from './databases';
import { breakersFor } from './breakers';
import { printFigures } from './figures';

/**
 * The cells of the README's fault matrix that the other specs do not measure: each dependency
 * slow, refusing connections, and restarted (its connections reset, then accepted again), through
 * a FaultProxy in front of the shared server. Every request gets an answer within its documented
 * bound, and each works again once the fault is gone. (Hung and dropping: resilience, cache,
 * invalidation-faults, rate-limit-failures, publisher, outbox and request-logs specs.)
 */
describe('fault matrix', () => {
  const base = loadConfig();

  /** `url` with its host and port replaced by the proxy's. */
  function through(url: string, proxy: FaultProxy): string {
    const proxied = new URL(url);
    proxied.host = `127.0.0.1:${proxy.port}`;
    return proxied.toString();
  }

  async function timed<T>(request: () => Promise<T>): Promise<{ result: T; ms: number }> {
    const started = performance.now();
    const result = await request();
    return { result, ms: performance.now() - started };
  }

  describe('Postgres', () => {
    const BOUND_MS = 1000;
    let proxy: FaultProxy;
    let app: NestFastifyApplication;
    let user: TestUser;

    beforeAll(async () => {
      const proxied = await proxiedDatabase();
      proxy = proxied.proxy;
      app = await startApi({
        DATABASE_URL: proxied.url,
        BREAKER_POSTGRES_TIMEOUT_MS: String(BOUND_MS),
        // Every cell must meet the bound on its own, not because the breaker opened.
        BREAKER_VOLUME_THRESHOLD: '1000',
      });
      user = await registerUser(app);
    });

    afterAll(async () => {
      await proxy.set({ kind: 'pass' });
      await app.close();
      await proxy.close();
    });

    const write = () =>
      call(app, {
        method: 'POST',
        url: '/v1/tasks',
        token: user.accessToken,
        body: { title: 't' },
      });

    it('slow (50 ms each way): writes succeed, slower; slower than the bound (600 ms each way): 503 within it', async () => {
      await proxy.set({ kind: 'latency', ms: 50 });
      const slow = await timed(write);
      // A write is one statement: one round trip of 1.2 s, past the bound.
      await proxy.set({ kind: 'latency', ms: 600 });
      const tooSlow = await timed(write);
      await proxy.set({ kind: 'pass' });
      printFigures(
        `postgres slow: write ${slow.ms.toFixed(0)} ms; too slow: ${tooSlow.result.status} after ${tooSlow.ms.toFixed(0)} ms`,
      );
      expect(slow.result.status).toBe(201);
      expect(tooSlow.result.status).toBe(503);
      expect(tooSlow.ms).toBeLessThan(BOUND_MS * 1.5);
    });

    it('refusing: writes are a 503 at once; accepted again, they succeed', async () => {
      await proxy.set({ kind: 'refuse' });
      const refused = await timed(write);
      await proxy.set({ kind: 'pass' });
      const back = await eventually(write, (reply) => reply.status === 201, 10_000, 50);
      printFigures(`postgres refusing: ${refused.result.status} after ${refused.ms.toFixed(0)} ms`);
      expect(refused.result.status).toBe(503);
      expect(refused.result.body.code).toBe('DEPENDENCY_UNAVAILABLE');
      expect(refused.ms).toBeLessThan(BOUND_MS);
      expect(back.status).toBe(201);
    });

    it('restarted (every connection reset, new ones accepted): a 503 at most per dead connection, never a 500, then writes succeed', async () => {
      expect((await write()).status).toBe(201);
      await proxy.set({ kind: 'reset' });
      await proxy.set({ kind: 'pass' });
      // Written before the app has read the resets: a pooled connection may die under a
      // statement. That is the database's trouble (503, Retry-After), and the pool drops it.
      const after: Reply<any>[] = [];
      while (after.length < 5 && after[after.length - 1]?.status !== 201) after.push(await write());
      printFigures(`postgres restarted: ${after.map((reply) => reply.status).join(', ')}`);
      for (const reply of after.slice(0, -1)) {
        expect([reply.status, reply.body.code]).toEqual([503, 'DEPENDENCY_UNAVAILABLE']);
        expect(reply.headers['retry-after']).toBe('1');
      }
      expect(after[after.length - 1].status).toBe(201);
    });

    it('restarted under a read: its connection reset under the statement is a 503, never a 500', async () => {
      // Tasks never read, so that no read is answered from the cache.
      const [first, second] = [await createTask(app, user), await createTask(app, user)];
      await proxy.set({ kind: 'latency', ms: 300 });
      const read = (id: string) =>
        call(app, { method: 'GET', url: `/v1/tasks/${id}`, token: user.accessToken });
      const cut = read(first.id);
      await new Promise((resolve) => setTimeout(resolve, 150));
      await proxy.set({ kind: 'reset' });
      await proxy.set({ kind: 'pass' });
      const reply = await cut;
      expect([reply.status, reply.body.code]).toEqual([503, 'DEPENDENCY_UNAVAILABLE']);
      expect(reply.headers['retry-after']).toBe('1');
      expect((await read(second.id)).status).toBe(200);
    });
  });

  describe('Redis slow (200 ms each way: past every wait on the request path)', () => {
    let proxy: FaultProxy;
    let app: NestFastifyApplication;

    beforeAll(async () => {
      const redis = new URL(base.redis.url);
      proxy = await FaultProxy.start({ host: redis.hostname, port: Number(redis.port || 6379) });
      app = await startApi({
        REDIS_URL: through(base.redis.url, proxy),
        RATE_LIMIT_ENABLED: 'true',
      });
    });

    afterAll(async () => {
      await proxy.set({ kind: 'pass' });
      await app.close();
      await proxy.close();
    });

    async function fallbackDecisions(): Promise<number> {
      const text = (await call<string>(app, { method: 'GET', url: '/metrics' })).body;
      return text
        .split('\n')
        .filter((line) => /^rate_limit_decisions_total\{.*decision="fallback"/.test(line))
        .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
    }

    it('reads and writes answer without waiting on it: the rate limit falls back, the cache is bypassed', async () => {
      const user = await registerUser(app);
      const task = await createTask(app, user);
      const before = await fallbackDecisions();
      await proxy.set({ kind: 'latency', ms: 200 });
      const results: Array<{ result: Reply<any>; ms: number }> = [];
      for (let i = 0; i < 5; i += 1) {
        // A list query never read before: no entry in process, so the shared level is asked.
        results.push(
          await timed(() =>
            call(app, { method: 'GET', url: `/v1/tasks?tag=t${i}`, token: user.accessToken }),
          ),
        );
        results.push(
          await timed(() =>
            call(app, {
              method: 'PATCH',
              url: `/v1/tasks/${task.id}`,
              token: user.accessToken,
              body: { title: `slow ${i}` },
            }),
          ),
        );
        // The instance's own write, read back at once.
        const reread = await call(app, {
          method: 'GET',
          url: `/v1/tasks/${task.id}`,
          token: user.accessToken,
        });
        expect(reread.body.title).toBe(`slow ${i}`);
      }
      const fallbacks = (await fallbackDecisions()) - before;
      await proxy.set({ kind: 'pass' });
      const slowest = Math.max(...results.map((r) => r.ms));
      printFigures(
        `redis slow: slowest request ${slowest.toFixed(0)} ms, ${fallbacks} fallback decisions`,
      );
      for (const { result } of results) expect(result.status).toBe(200);
      const reads = results.filter((_, i) => i % 2 === 0).map((r) => r.result.headers['x-cache']);
      expect(reads).toEqual(Array(5).fill('bypass'));
      expect(fallbacks).toBeGreaterThan(0);
      // A decision's 50 ms, a cache read's 50 ms, a write's 250 ms, and no more: never a 200 ms
      // round trip per call.
      expect(slowest).toBeLessThan(800);
    });
  });

  describe('RabbitMQ publishing (refusing, restarted, slow)', () => {
    let proxy: FaultProxy;
    let breakers: Breakers;
    let publisher: Publisher;
    let queue: string;
    const TIMEOUT_MS = 300;

    beforeAll(async () => {
      // No app to route Nest's logger to pino: the client's reconnection errors would flood.
      Logger.overrideLogger(false);
      const broker = new URL(base.rabbitmq.url);
      proxy = await FaultProxy.start({ host: broker.hostname, port: Number(broker.port || 5672) });
      const config = loadConfig({
        RABBITMQ_URL: through(base.rabbitmq.url, proxy),
        RABBITMQ_QUEUE_PREFIX: `${base.rabbitmq.queuePrefix}matrix-${randomUUID()}.`,
        BREAKER_RABBITMQ_TIMEOUT_MS: String(TIMEOUT_MS),
        BREAKER_VOLUME_THRESHOLD: '1000',
      });
      breakers = breakersFor(config);
      publisher = new Publisher(config, breakers);
      queue = queueName(config, QUEUES.jobs);
    });

    afterAll(async () => {
      await proxy.set({ kind: 'pass' });
      await publisher.onApplicationShutdown();
      breakers.onApplicationShutdown();
      const amqp = await connect(base.rabbitmq.url);
      const channel = await amqp.createChannel();
      await channel.deleteQueue(queue);
      await amqp.close();
      await proxy.close();
    });

    const publish = (n: string) =>
      timed(() =>
        publisher.publish(QUEUES.jobs, 'matrix.event', { n }).then(
          () => 'published',
          (error: { code?: string }) => error.code ?? 'failed',
        ),
      );
    const healed = () =>
      eventually(
        () => publish('healed').then(({ result }) => result),
        (outcome) => outcome === 'published',
        20_000,
        100,
      );

    it.each<[string, Fault]>([
      ['refusing', { kind: 'refuse' }],
      ['restarted', { kind: 'reset' }],
    ])(
      '%s: a publish fails within the timeout; once it is back, publishing resumes',
      async (name, fault) => {
        expect((await publish('before')).result).toBe('published');
        await proxy.set(fault);
        const cut = await publish(name);
        await proxy.set({ kind: 'pass' });
        const back = await timed(healed);
        printFigures(
          `rabbitmq ${name}: ${cut.result} after ${cut.ms.toFixed(0)} ms; publishing again after ${back.ms.toFixed(0)} ms`,
        );
        expect(['DEPENDENCY_TIMEOUT', 'DEPENDENCY_UNAVAILABLE']).toContain(cut.result);
        expect(cut.ms).toBeLessThan(TIMEOUT_MS * 2);
        expect(back.result).toBe('published');
      },
    );

    it('slow: under the timeout, published; over it, a 503 within it', async () => {
      expect((await publish('warm')).result).toBe('published');
      await proxy.set({ kind: 'latency', ms: 50 });
      const slow = await publish('slow');
      await proxy.set({ kind: 'latency', ms: 400 });
      const tooSlow = await publish('too slow');
      await proxy.set({ kind: 'pass' });
      printFigures(
        `rabbitmq slow: ${slow.result} after ${slow.ms.toFixed(0)} ms; too slow: ${tooSlow.result} after ${tooSlow.ms.toFixed(0)} ms`,
      );
      expect(slow.result).toBe('published');
      expect(tooSlow.result).toBe('DEPENDENCY_TIMEOUT');
      expect(tooSlow.ms).toBeLessThan(TIMEOUT_MS * 2);
      expect((await healed()).valueOf()).toBe('published');
    });
  });
});
