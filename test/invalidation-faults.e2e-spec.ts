import { FaultProxy } from '@app/testing';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { printFigures } from './figures';
import { type Running, freePort, send, startBuiltApi } from './processes';
import { type RedisServer, startRedis } from './redis-servers';

/**
 * Key revocation (CONTRACT §3: every instance within 1 s) and cache invalidation (CONTRACT §7;
 * within 1 s when the channel is lost, README "Caching") between two api processes while their
 * Redis fails in the ways that never close a connection: a Redis that hangs (SIGSTOP), and a
 * network that drops every packet between one instance and Redis (a FaultProxy black-hole). The
 * listening instance must notice that its channel has gone quiet and stop trusting what it cached.
 * Then the same after Redis is restarted. The Redis is this spec's own, never the shared one.
 */
describe('invalidations when Redis hangs, drops packets or restarts', () => {
  const password = 'a password for the fault spec';
  const REVOCATION_BOUND_MS = 1000;
  const CACHE_BOUND_MS = 1000;
  let redis: RedisServer;
  /** Between the listening instance and Redis. */
  let proxy: FaultProxy;
  let writer: { run: Running; base: string };
  let listener: { run: Running; base: string };

  const startInstance = (redisPort: number) =>
    startBuiltApi({ REDIS_URL: `redis://127.0.0.1:${redisPort}` });

  beforeAll(async () => {
    redis = await startRedis(await freePort());
    proxy = await FaultProxy.start({ host: '127.0.0.1', port: redis.port });
    [writer, listener] = await Promise.all([startInstance(redis.port), startInstance(proxy.port)]);
  });

  afterAll(async () => {
    for (const { run } of [writer, listener]) run?.child.kill('SIGTERM');
    await Promise.all([writer?.run.exited, listener?.run.exited]);
    await proxy?.close();
    redis?.kill();
    await redis?.exited;
  });

  /** Polls `check` every 10 ms until it holds, for at most 5 s; ms from `since` until it did. */
  async function heldAfter(since: number, check: () => Promise<boolean>): Promise<number> {
    while (performance.now() - since < 5000) {
      if (await check()) return performance.now() - since;
      await sleep(10);
    }
    return Infinity;
  }

  interface Subject {
    token: string;
    key: { id: string; key: string };
    taskId: string;
  }

  /**
   * A user with an API key and a task, both verified or read on the listening instance until it
   * serves them from its own memory: what a lost invalidation would leave stale there.
   */
  async function subject(): Promise<Subject> {
    const email = `faults-${Date.now()}-${Math.random().toString(36).slice(2)}@example.test`;
    const registered = await send(
      writer.base,
      'POST',
      '/v1/auth/register',
      {},
      {
        email,
        password,
        name: 'Faults',
      },
    );
    expect(registered.status).toBe(201);
    const token: string = registered.body.accessToken;
    const key = await send(
      writer.base,
      'POST',
      '/v1/api-keys',
      { token },
      {
        name: 'k',
        scopes: ['tasks:read'],
      },
    );
    expect(key.status).toBe(201);
    const task = await send(writer.base, 'POST', '/v1/tasks', { token }, { title: 'before' });
    expect(task.status).toBe(201);
    expect(
      (await send(listener.base, 'GET', '/v1/auth/whoami', { key: key.body.key })).status,
    ).toBe(200);
    // Until it does: after the test before, the listener's channel may still be subscribing
    // again (it caches nothing locally until then), for longer on a busy machine.
    const servedLocally = await heldAfter(performance.now(), async () => {
      const read = await send(listener.base, 'GET', `/v1/tasks/${task.body.id}`, { token });
      return read.headers.get('x-cache') === 'hit-local';
    });
    expect(servedLocally).toBeLessThan(Infinity);
    // Older than the 500 ms an unsubscribed instance trusts a key for: only a channel that knows
    // it has gone quiet makes the listening instance check it again.
    await sleep(600);
    return { token, key: key.body, taskId: task.body.id };
  }

  /** Revokes the key and renames the task through the writer; how long the listener trusted each. */
  async function staleFor({
    token,
    key,
    taskId,
  }: Subject): Promise<{ revocation: number; write: number }> {
    const renamed = send(
      writer.base,
      'PATCH',
      `/v1/tasks/${taskId}`,
      { token },
      { title: 'after' },
    );
    const revokedAt = performance.now();
    const revoked = await send(writer.base, 'DELETE', `/v1/api-keys/${key.id}`, { token });
    expect(revoked.status).toBe(204);
    const writeAnswered = await renamed;
    expect(writeAnswered.status).toBe(200);
    const writtenAt = performance.now();
    const [revocation, write] = await Promise.all([
      heldAfter(revokedAt, async () => {
        const { status } = await send(listener.base, 'GET', '/v1/auth/whoami', { key: key.key });
        if (status !== 401) expect(status).toBe(200);
        return status === 401;
      }),
      heldAfter(writtenAt, async () => {
        const read = await send(listener.base, 'GET', `/v1/tasks/${taskId}`, { token });
        expect(read.status).toBe(200);
        return read.body.title === 'after';
      }),
    ]);
    return { revocation, write };
  }

  it('Redis hung (SIGSTOP): the listener stops trusting its cached key and task within the bounds', async () => {
    const target = await subject();
    await redis.pause();
    try {
      const { revocation, write } = await staleFor(target);
      printFigures(
        `Redis hung: key refused after ${revocation.toFixed(0)} ms, write seen after ${write.toFixed(0)} ms`,
      );
      expect(revocation).toBeLessThan(REVOCATION_BOUND_MS);
      expect(write).toBeLessThan(CACHE_BOUND_MS);
    } finally {
      redis.resume();
    }
  });

  it('packets dropped between the listener and Redis: the same bounds', async () => {
    const target = await subject();
    await proxy.set({ kind: 'blackhole' });
    try {
      // The writer's Redis works: it publishes both; the listener hears neither.
      const { revocation, write } = await staleFor(target);
      printFigures(
        `dropped: key refused after ${revocation.toFixed(0)} ms, write seen after ${write.toFixed(0)} ms`,
      );
      expect(revocation).toBeLessThan(REVOCATION_BOUND_MS);
      expect(write).toBeLessThan(CACHE_BOUND_MS);
    } finally {
      await proxy.set({ kind: 'pass' });
    }
  });

  it('after a fault the channel is heard again: invalidations arrive in milliseconds, not by timeout', async () => {
    // Whatever the last test left, the listener resubscribes within a second or two.
    await sleep(2000);
    const target = await subject();
    const { revocation, write } = await staleFor(target);
    printFigures(
      `healed: key refused after ${revocation.toFixed(0)} ms, write seen after ${write.toFixed(0)} ms`,
    );
    // Well under the 500 ms an unsubscribed instance would take.
    expect(revocation).toBeLessThan(300);
    expect(write).toBeLessThan(300);
  });

  it('Redis restarted (SIGKILL, a new server on the same port): within the bounds, then heard again', async () => {
    const target = await subject();
    redis.kill();
    await redis.exited;
    const restarted = startRedis(redis.port);
    const { revocation, write } = await staleFor(target);
    redis = await restarted;
    printFigures(
      `restarted: key refused after ${revocation.toFixed(0)} ms, write seen after ${write.toFixed(0)} ms`,
    );
    expect(revocation).toBeLessThan(REVOCATION_BOUND_MS);
    expect(write).toBeLessThan(CACHE_BOUND_MS);
    await sleep(2000);
    const healed = await staleFor(await subject());
    expect(healed.revocation).toBeLessThan(300);
    expect(healed.write).toBeLessThan(300);
  });
});
