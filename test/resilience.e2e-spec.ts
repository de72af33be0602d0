import { Breakers } from '@app/resilience';
import {
  FaultProxy,
  type Reply,
  type TestUser,
  call,
  createTask,
  eventually,
  expectProblem,
  registerUser,
} from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { printFigures } from './figures';
import { startApi } from './app';
import { proxiedDatabase } from './databases';

/**
 * The postgres circuit breaker (libs/resilience) with Postgres black-holed through FaultProxy
 * while requests flow: bounded waits, then fast 503s for writes, stale reads, readiness 503 with
 * liveness 200, and recovery on its own once the network heals.
 */
describe('the postgres breaker, with Postgres cut', () => {
  let app: NestFastifyApplication;
  let proxy: FaultProxy;

  beforeAll(async () => {
    const proxied = await proxiedDatabase();
    proxy = proxied.proxy;
    app = await startApi({
      DATABASE_URL: proxied.url,
      // Hung queries hold their connections for the statement timeout (+1 s), long after the
      // breaker gave up on them at 300 ms.
      DATABASE_STATEMENT_TIMEOUT_MS: '5000',
      BREAKER_POSTGRES_TIMEOUT_MS: '300',
      // A pool smaller than the requests in flight below: those queued for a connection while
      // the others hang must be bounded by the breaker too, not by the 5 s connect timeout.
      DATABASE_POOL_SIZE: '2',
      BREAKER_VOLUME_THRESHOLD: '5',
      BREAKER_RESET_TIMEOUT_MS: '3000',
      CACHE_TTL_SECONDS: '1',
      CACHE_LOCAL_TTL_MS: '100',
    });
  });

  afterAll(async () => {
    await proxy.set({ kind: 'pass' });
    await app.close();
    await proxy.close();
  });

  it('bounds every wait, refuses writes at once, serves reads stale, and recovers', async () => {
    const user = await registerUser(app);
    const task = await createTask(app, user);
    const other = await createTask(app, user);
    const read = (id: string) =>
      call(app, { method: 'GET', url: `/v1/tasks/${id}`, token: user.accessToken });
    const writer = await registerUser(app);
    const writeAs = (who: TestUser) =>
      call(app, { method: 'POST', url: '/v1/tasks', token: who.accessToken, body: { title: 'x' } });
    const write = () => writeAs(user);
    const cached = await read(task.id);
    await sleep(1100); // no longer fresh: served again only as stale

    await proxy.set({ kind: 'blackhole' });
    // Requests keep coming while the breaker is still closed: each waits the timeout at most.
    const timed = async (request: () => Promise<Reply<any>>) => {
      const started = performance.now();
      const reply = await request();
      return { reply, ms: performance.now() - started };
    };
    const during: Array<{ reply: Reply<any>; ms: number }> = [];
    const breakers = app.get(Breakers);
    const deadline = Date.now() + 20_000;
    while (breakers.stateOf('postgres') === 'closed' && Date.now() < deadline) {
      during.push(
        ...(await Promise.all([
          ...Array.from({ length: 6 }, () => timed(() => read(other.id))),
          // Writes by another user: a write that times out may have committed, so it drops its
          // owner's cached tasks (this user's must stay, to be served stale below). Its ROLLBACK
          // hangs too, holding the connection, so the pool (2) runs out.
          ...Array.from({ length: 16 }, () => timed(() => writeAs(writer))),
        ])),
      );
    }
    expect(breakers.stateOf('postgres')).toBe('open');
    for (const { reply } of during) {
      expect(reply.status).toBe(503);
      expect(['DEPENDENCY_UNAVAILABLE', 'DEPENDENCY_TIMEOUT']).toContain(reply.body.code);
      expect(reply.headers['retry-after']).toMatch(/^\d+$/);
    }
    const slowest = Math.max(...during.map((d) => d.ms));
    // The breaker's 300 ms for a whole session (the wait for a connection, the statements, a
    // ROLLBACK), plus a lost scheduling turn on a loaded machine; not the 5 s connect timeout,
    // nor the 6 s query timeout of a hung ROLLBACK, that requests would otherwise wait out.
    expect(slowest).toBeLessThan(2000);

    // Open: writes are refused at once, with a problem and Retry-After.
    const refusals: number[] = [];
    for (let i = 0; i < 100; i += 1) {
      const { reply, ms } = await timed(write);
      expectProblem(reply, 503, 'DEPENDENCY_UNAVAILABLE');
      expect(Number(reply.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      refusals.push(ms);
    }
    refusals.sort((a, b) => a - b);
    const p99 = refusals[98];
    printFigures(
      `breaker open: write refused in p50 ${refusals[49].toFixed(2)} ms, p99 ${p99.toFixed(2)} ms; slowest request while closed ${slowest.toFixed(0)} ms`,
    );
    // None waited on the database any more: each came back far inside the 300 ms a call to it
    // may take. (How fast a refusal is, is measured by npm run bench, not asserted here.)
    expect(refusals[99]).toBeLessThan(150);

    // Reads: what was cached comes back stale; what was not is a 503 problem.
    const stale = await read(task.id);
    expect([stale.status, stale.headers['x-cache'], stale.body]).toEqual([
      200,
      'stale',
      cached.body,
    ]);
    expectProblem(await read(other.id), 503, 'DEPENDENCY_UNAVAILABLE');

    // Probes: not ready, still alive.
    expect((await call(app, { method: 'GET', url: '/health/ready' })).status).toBe(503);
    expect((await call(app, { method: 'GET', url: '/health/live' })).status).toBe(200);

    // Healed: after the reset timeout (3 s) one probe query goes through, and the breaker closes.
    await proxy.set({ kind: 'pass' });
    const back = await eventually(write, (reply) => reply.status === 201, 10_000, 100);
    expect(back.status).toBe(201);
    expect(app.get(Breakers).stateOf('postgres')).toBe('closed');
    expect((await read(other.id)).status).toBe(200);
    expect((await call(app, { method: 'GET', url: '/health/ready' })).status).toBe(200);
  });
});

/**
 * One bound for everything a request waits on Postgres in one session (the wait for a connection,
 * the transaction's statements, its ROLLBACK): a database that stops answering mid-write gets the
 * client its DEPENDENCY_TIMEOUT after the breaker's timeout, not after that plus a ROLLBACK that
 * hangs as long again.
 */
describe('the postgres bound, with Postgres hung mid-request', () => {
  const TIMEOUT_MS = 1000;
  let app: NestFastifyApplication;
  let proxy: FaultProxy;

  beforeAll(async () => {
    const proxied = await proxiedDatabase();
    proxy = proxied.proxy;
    app = await startApi({
      DATABASE_URL: proxied.url,
      DATABASE_STATEMENT_TIMEOUT_MS: '10000',
      BREAKER_POSTGRES_TIMEOUT_MS: String(TIMEOUT_MS),
      // Two connections (start-up's migrations need both): the last two writes below wait for
      // one while the first two hang on them.
      DATABASE_POOL_SIZE: '2',
      // Never opens during this test: every request must meet the bound on its own.
      BREAKER_VOLUME_THRESHOLD: '1000',
    });
  });

  afterAll(async () => {
    await proxy.set({ kind: 'pass' });
    await app.close();
    await proxy.close();
  });

  it('writes, and writes queued behind them, each wait the one bound at most, then a 503 that says it', async () => {
    const user = await registerUser(app);
    await proxy.set({ kind: 'blackhole' });
    const timed = async () => {
      const started = performance.now();
      const reply = await call(app, {
        method: 'POST',
        url: '/v1/tasks',
        token: user.accessToken,
        body: { title: 'into the void' },
      });
      return { reply, ms: performance.now() - started };
    };
    const writes = await Promise.all([timed(), timed(), timed(), timed()]);
    printFigures(
      `postgres hung: writes answered after ${writes.map((w) => w.ms.toFixed(0)).join(', ')} ms`,
    );
    for (const { reply, ms } of writes) {
      // Timed out on a statement, or on the wait for a connection.
      expectProblem(reply, 503, reply.body.code);
      expect(['DEPENDENCY_TIMEOUT', 'DEPENDENCY_UNAVAILABLE']).toContain(reply.body.code);
      expect(reply.body.detail).toContain(`within ${TIMEOUT_MS} ms`);
      // It really waited (the fault held it), and for the bound only: a hung ROLLBACK used to
      // add as long again.
      expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
      expect(ms).toBeLessThan(TIMEOUT_MS * 1.5);
    }
    await proxy.set({ kind: 'pass' });
    // Nothing half-written: the connection that hung was dropped, and the next write works.
    const back = await eventually(
      () =>
        call(app, {
          method: 'POST',
          url: '/v1/tasks',
          token: user.accessToken,
          body: { title: 'after' },
        }),
      (reply) => reply.status === 201,
      10_000,
      100,
    );
    expect(back.status).toBe(201);
    const list = await call(app, { method: 'GET', url: '/v1/tasks', token: user.accessToken });
    expect(list.body.data.map((task: { title: string }) => task.title)).toEqual(['after']);
  });
});
