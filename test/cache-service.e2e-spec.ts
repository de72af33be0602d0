import { CacheService } from '@app/cache';
import { AppConfig, loadConfig } from '@app/config';
import { createRedisClient } from '@app/redis';
import { Breakers } from '@app/resilience';
import { FaultProxy, eventually } from '@app/testing';
import { Logger, NotFoundException } from '@nestjs/common';
import type Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Counter, Registry } from 'prom-client';
import { breakersFor } from './breakers';

/**
 * The two-level cache against the real Redis: several CacheService instances (as several api
 * instances would have) on this run's Redis, under a key prefix of this spec's own.
 */
describe('CacheService (two levels, real Redis)', () => {
  const clients: Redis[] = [];
  const services: CacheService[] = [];
  const breakerSets: Breakers[] = [];
  const proxies: FaultProxy[] = [];
  const prefix = `${loadConfig().redis.keyPrefix}cache-spec:${randomUUID()}:`;

  // No app here to route Nest's logger to pino: the outage warnings would flood the output.
  beforeAll(() => {
    Logger.overrideLogger(false);
  });

  afterAll(async () => {
    for (const service of services) service.onApplicationShutdown();
    for (const breakers of breakerSets) breakers.onApplicationShutdown();
    for (const client of clients) client.disconnect();
    await Promise.all(proxies.map((proxy) => proxy.close()));
  });

  interface Instance {
    cache: CacheService;
    breakers: Breakers;
    counts: () => Promise<Record<string, number>>;
  }

  /** A CacheService as an api instance builds it, subscribed before this resolves. */
  async function instance(env: Record<string, string> = {}, redisUrl?: string): Promise<Instance> {
    const config: AppConfig = loadConfig({
      REDIS_KEY_PREFIX: prefix,
      ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
      ...env,
    });
    const redis = createRedisClient(config, {}, 'CacheSpecRedis');
    clients.push(redis);
    const registry = new Registry();
    const requests = new Counter({
      name: 'cache_requests_total',
      help: 'spec',
      labelNames: ['level', 'result'],
      registers: [registry],
    });
    const breakers = breakersFor(config);
    const cache = new CacheService(config, redis, requests, breakers);
    cache.onModuleInit();
    services.push(cache);
    breakerSets.push(breakers);
    // Subscribed: a value of a fresh scope is then shared through Redis (`miss`, not `bypass`).
    await eventually(
      async () => (await cache.read(`probe:${randomUUID()}`, 'k', resolved(1))).outcome,
      (outcome) => outcome === 'miss',
      5000,
    );
    const counts = async () => {
      const metric = await registry.getSingleMetric('cache_requests_total')!.get();
      return Object.fromEntries(
        metric.values.map((v) => [`${v.labels.level}/${v.labels.result}`, v.value]),
      );
    };
    return { cache, breakers, counts };
  }

  const resolved =
    <T>(value: T) =>
    (): Promise<T> =>
      Promise.resolve(value);
  const rejected = (error: Error) => (): Promise<never> => Promise.reject(error);

  /** A loader that counts its calls and returns what `value()` says at the time. */
  function loader<T>(value: () => T, ms = 5) {
    const loader = {
      calls: 0,
      load: async () => {
        loader.calls += 1;
        await sleep(ms);
        return value();
      },
    };
    return loader;
  }

  it('serves a value from the database, then from this instance, then from Redis on another', async () => {
    const [a, b] = [await instance(), await instance()];
    const scope = `tasks:${randomUUID()}`;
    const source = loader(() => ({ id: 'x', version: 1 }));
    expect(await a.cache.read(scope, 'k', source.load)).toEqual({
      value: { id: 'x', version: 1 },
      outcome: 'miss',
    });
    const second = a.cache.read(scope, 'k', source.load);
    // A fresh in-process hit is answered synchronously: no promise, no I/O.
    expect(second).not.toBeInstanceOf(Promise);
    expect(second).toEqual({ value: { id: 'x', version: 1 }, outcome: 'hit-local' });
    await sleep(20); // the write to Redis is not awaited by the reader
    expect(await b.cache.read(scope, 'k', source.load)).toEqual({
      value: { id: 'x', version: 1 },
      outcome: 'hit-redis',
    });
    expect((await b.cache.read(scope, 'k', source.load)).outcome).toBe('hit-local');
    expect(source.calls).toBe(1);
    expect(await a.counts()).toMatchObject({ 'local/hit': 1, 'redis/miss': 2 });
    expect(await b.counts()).toMatchObject({ 'local/hit': 1, 'redis/hit': 1 });
  });

  it('keeps scopes and keys apart', async () => {
    const a = await instance();
    const [scope1, scope2] = [`tasks:${randomUUID()}`, `tasks:${randomUUID()}`];
    await a.cache.read(scope1, 'k', resolved('one'));
    expect((await a.cache.read(scope2, 'k', resolved('two'))).value).toBe('two');
    expect((await a.cache.read(scope1, 'k2', resolved('three'))).value).toBe('three');
    expect((await a.cache.read(scope1, 'k', resolved('other'))).value).toBe('one');
  });

  it('bounds the in-process level by entries and by bytes', async () => {
    const byEntries = await instance({ CACHE_LOCAL_MAX_ENTRIES: '3' });
    const byBytes = await instance({ CACHE_LOCAL_MAX_BYTES: '1024' });
    const keys = Array.from({ length: 10 }, (_, i) => `k${i}`);
    const inProcess = async (cache: CacheService, value: string): Promise<string[]> => {
      const scope = `tasks:${randomUUID()}`;
      for (const key of keys) await cache.read(scope, key, resolved(value));
      // What is still answered from memory: a hit there is synchronous.
      return keys.filter((key) => !(cache.read(scope, key, resolved(value)) instanceof Promise));
    };
    expect(await inProcess(byEntries.cache, 'small')).toEqual(['k7', 'k8', 'k9']);
    // Each value is 302 bytes as JSON: three fit in 1 KiB, the most recent ones.
    expect(await inProcess(byBytes.cache, 'x'.repeat(300))).toEqual(['k7', 'k8', 'k9']);
  });

  it('a write is seen at once on its instance and within 100 ms on another, p99 over 200', async () => {
    const [a, b] = [await instance(), await instance()];
    const scope = `tasks:${randomUUID()}`;
    let version = 1;
    const source = loader(() => version);
    const delays: number[] = [];
    for (let trial = 0; trial < 200; trial += 1) {
      await a.cache.read(scope, 'k', source.load);
      await b.cache.read(scope, 'k', source.load);
      version += 1;
      const written = performance.now();
      await a.cache.invalidate(scope.slice('tasks:'.length), ['tasks']);
      expect((await a.cache.read(scope, 'k', source.load)).value).toBe(version);
      await eventually(
        async () => (await b.cache.read(scope, 'k', source.load)).value,
        (value) => value === version,
        1000,
        1,
      );
      delays.push(performance.now() - written);
    }
    delays.sort((x, y) => x - y);
    expect(delays[Math.ceil(delays.length * 0.99) - 1]).toBeLessThan(100);
  });

  it('loads a cold key once per instance under 500 concurrent reads', async () => {
    const [a, b] = [await instance(), await instance()];
    const scope = `tasks:${randomUUID()}`;
    // Slow loads: both instances miss in Redis before either has stored the value.
    const [fromA, fromB] = [loader(() => 'v', 100), loader(() => 'v', 100)];
    const reads = await Promise.all(
      Array.from({ length: 500 }, (_, i) =>
        Promise.resolve(
          i % 2 === 0
            ? a.cache.read(scope, 'cold', fromA.load)
            : b.cache.read(scope, 'cold', fromB.load),
        ),
      ),
    );
    expect(reads.every((r) => r.value === 'v')).toBe(true);
    expect([fromA.calls, fromB.calls]).toEqual([1, 1]);
  });

  it('serves the last good value as stale when loading fails, but never for a 4xx', async () => {
    const a = await instance({ CACHE_TTL_SECONDS: '1', CACHE_LOCAL_TTL_MS: '100' });
    const scope = `tasks:${randomUUID()}`;
    await a.cache.read(scope, 'k', resolved('good'));
    await sleep(1100);
    const failing = rejected(new Error('connection terminated'));
    expect(await a.cache.read(scope, 'k', failing)).toEqual({ value: 'good', outcome: 'stale' });
    await expect(
      a.cache.read(scope, 'k', rejected(new NotFoundException())),
    ).rejects.toBeInstanceOf(NotFoundException);
    // Nothing to fall back on: the failure is the caller's.
    await expect(a.cache.read(scope, 'never-loaded', failing)).rejects.toThrow(
      'connection terminated',
    );
    expect(await a.counts()).toMatchObject({ 'local/stale': 1 });
  });

  it('an invalidated value is not served stale', async () => {
    const a = await instance();
    const owner = randomUUID();
    await a.cache.read(`tasks:${owner}`, 'k', resolved('before the write'));
    await a.cache.invalidate(owner, ['tasks']);
    await expect(
      a.cache.read(`tasks:${owner}`, 'k', rejected(new Error('database down'))),
    ).rejects.toThrow('database down');
  });

  /** A proxy in front of this run's Redis, to cut it. */
  async function redisProxy(): Promise<FaultProxy> {
    const target = new URL(loadConfig().redis.url);
    const proxy = await FaultProxy.start({
      host: target.hostname,
      port: Number(target.port || 6379),
    });
    proxies.push(proxy);
    return proxy;
  }

  it('without Redis: reads and writes succeed, from this instance and the database', async () => {
    const proxy = await redisProxy();
    // Short enough that a redis breaker opened by one fault has closed before the next.
    const a = await instance(
      { BREAKER_RESET_TIMEOUT_MS: '300' },
      `redis://127.0.0.1:${proxy.port}`,
    );
    const owner = randomUUID();
    const scope = `tasks:${owner}`;
    let value = 'v1';
    const source = loader(() => value);
    await a.cache.read(scope, 'k', source.load);
    for (const fault of [{ kind: 'blackhole' }, { kind: 'reset' }, { kind: 'refuse' }] as const) {
      await proxy.set(fault);
      // The clients learn of a reset or a close in a later turn of their event loop.
      await sleep(100);
      const started = performance.now();
      const first = await a.cache.read(scope, `k-${fault.kind}`, source.load);
      expect(first.outcome).toBe('bypass');
      expect((await a.cache.read(scope, `k-${fault.kind}`, source.load)).outcome).toBe('hit-local');
      value = `after ${fault.kind}`;
      await a.cache.invalidate(owner, ['tasks']);
      // This instance's own write is seen at once, Redis or not.
      expect((await a.cache.read(scope, `k-${fault.kind}`, source.load)).value).toBe(value);
      // No hang: a hung Redis costs a read 50 ms and a write 250 ms at most.
      expect(performance.now() - started).toBeLessThan(2000);
      await proxy.set({ kind: 'pass' });
      // Subscribed again, the instance uses Redis again, and its write reached it.
      const back = await eventually(
        async () => (await a.cache.read(scope, `k-back-${fault.kind}`, source.load)).outcome,
        (outcome) => outcome === 'miss',
        5000,
      );
      expect(back).toBe('miss');
    }
  });

  it('a hung Redis opens the redis breaker: reads then stop waiting on it, until it answers again', async () => {
    const proxy = await redisProxy();
    const a = await instance(
      {
        BREAKER_VOLUME_THRESHOLD: '3',
        BREAKER_REDIS_TIMEOUT_MS: '100',
        BREAKER_RESET_TIMEOUT_MS: '1000',
      },
      `redis://127.0.0.1:${proxy.port}`,
    );
    const source = loader(() => 'value', 0);
    // Each read of a scope this instance has not seen asks Redis for the scope's generation.
    const readNew = async () => {
      const started = performance.now();
      const read = await a.cache.read(`tasks:${randomUUID()}`, 'k', source.load);
      return { outcome: read.outcome, ms: performance.now() - started };
    };
    await proxy.set({ kind: 'blackhole' });
    // Hung calls wait REDIS_WAIT_MS (50 ms), and count as failures once the breaker's 100 ms pass.
    const state = await eventually(
      async () => {
        await readNew();
        return a.breakers.stateOf('redis');
      },
      (current) => current === 'open',
      5000,
    );
    expect(state).toBe('open');

    const rejects = () => a.breakers.list().find((b) => b.name === 'redis')!.window.rejects;
    const rejectedBefore = rejects();
    const whileOpen = [];
    for (let i = 0; i < 20; i += 1) whileOpen.push(await readNew());
    expect(whileOpen.map((read) => read.outcome)).toEqual(Array(20).fill('bypass'));
    // Each read's Redis call was refused by the breaker, not sent and waited on: 20 reads took
    // far less than the 20 × 50 ms that waiting on the hung Redis would have cost.
    expect(rejects() - rejectedBefore).toBe(20);
    expect(whileOpen.reduce((total, read) => total + read.ms, 0)).toBeLessThan(500);

    await proxy.set({ kind: 'pass' });
    // Its half-open probe succeeds, it closes, and the shared level is used again.
    const back = await eventually(
      async () => (await readNew()).outcome,
      (outcome) => outcome === 'miss',
      5000,
    );
    expect(back).toBe('miss');
    expect(a.breakers.stateOf('redis')).toBe('closed');
  });
});
