import { loadConfig } from '@app/config';
import {
  FaultProxy,
  type Reply,
  type TestUser,
  call,
  createCategory,
  createTask,
  eventually,
  registerUser,
} from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { TasksRepository } from '../apps/api/src/tasks/tasks.repository';
import { printFigures } from './figures';
import { startApi } from './app';

/**
 * The read cache through the API (CONTRACT §7): two api instances on this run's Postgres and
 * Redis, and instances whose Postgres or Redis is reached through a fault-injecting proxy.
 */
describe('caching across instances', () => {
  const apps: NestFastifyApplication[] = [];
  const proxies: FaultProxy[] = [];
  let one: NestFastifyApplication;
  let two: NestFastifyApplication;

  beforeAll(async () => {
    one = await api();
    two = await api();
  });

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await Promise.all(proxies.map((proxy) => proxy.close()));
  });

  async function api(env: Record<string, string> = {}): Promise<NestFastifyApplication> {
    const app = await startApi(env);
    apps.push(app);
    // Subscribed to invalidations: until then an instance keeps what it loads to itself.
    const user = await registerUser(app);
    const task = await createTask(app, user);
    await eventually(
      async () => (await get(app, user, `/v1/tasks/${task.id}`)).headers['x-cache'],
      (outcome) => outcome !== 'bypass',
      10_000,
    );
    return app;
  }

  async function proxied(target: string): Promise<FaultProxy> {
    const url = new URL(target);
    const proxy = await FaultProxy.start({ host: url.hostname, port: Number(url.port) });
    proxies.push(proxy);
    return proxy;
  }

  const get = (app: NestFastifyApplication, user: TestUser, url: string) =>
    call(app, { method: 'GET', url, token: user.accessToken });

  const patch = (app: NestFastifyApplication, user: TestUser, url: string, body: object) =>
    call(app, { method: 'PATCH', url, token: user.accessToken, body });

  /** Counts the database reads behind GET /v1/tasks/:id on `app`. */
  function countLoads(app: NestFastifyApplication): { count: number } {
    const repository = app.get(TasksRepository);
    const counter = { count: 0 };
    const findOwned = repository.findOwned.bind(repository);
    repository.findOwned = (...args) => {
      counter.count += 1;
      return findOwned(...args);
    };
    return counter;
  }

  it('says where each read came from: miss, then hit-local, then hit-redis on the other instance', async () => {
    const user = await registerUser(one);
    const task = await createTask(one, user);
    for (const [app, outcome] of [
      [one, 'miss'],
      [one, 'hit-local'],
      [two, 'hit-redis'],
      [two, 'hit-local'],
    ] as const) {
      const reply = await get(app, user, `/v1/tasks/${task.id}`);
      expect([reply.status, reply.headers['x-cache'], reply.body]).toEqual([200, outcome, task]);
      expect(reply.headers['cache-control']).toBe('private');
      if (outcome === 'miss') await sleep(20); // the shared level is written after the answer
    }
  });

  it('keeps ETag and 304 on cached responses', async () => {
    const user = await registerUser(one);
    const task = await createTask(one, user);
    const first = await get(one, user, `/v1/tasks/${task.id}`);
    const cached = await call(one, {
      method: 'GET',
      url: `/v1/tasks/${task.id}`,
      token: user.accessToken,
      headers: { 'if-none-match': String(first.headers.etag) },
    });
    expect([cached.status, cached.headers['x-cache'], cached.raw]).toEqual([304, 'hit-local', '']);
    expect(cached.headers.etag).toBe(first.headers.etag);
  });

  it('keys lists by normalised query: parameter order does not matter, values do', async () => {
    const user = await registerUser(one);
    await createTask(one, user, { title: 'b', priority: 'high' });
    await createTask(one, user, { title: 'a', priority: 'low' });
    const first = await get(one, user, '/v1/tasks?sort=title&limit=5');
    const reordered = await get(one, user, '/v1/tasks?limit=5&sort=title');
    const other = await get(one, user, '/v1/tasks?limit=5&sort=-title');
    expect(first.headers['x-cache']).toBe('miss');
    expect([reordered.headers['x-cache'], reordered.body]).toEqual(['hit-local', first.body]);
    expect(other.headers['x-cache']).toBe('miss');
    expect(other.body.data.map((t: { title: string }) => t.title)).toEqual(['b', 'a']);
    // A bad query is refused, cached or not.
    expect((await get(one, user, '/v1/tasks?limit=500')).status).toBe(400);
    expect((await get(one, user, '/v1/tasks?limit=500')).status).toBe(400);
  });

  it('two users hammering the same routes never get each other’s data', async () => {
    // The same titles and category names for both: only the owner tells their data apart. Each
    // user's tasks carry the user's mark, so tasks created during the run are told apart too.
    const users = await Promise.all(
      ['mark-0', 'mark-1'].map(async (mark) => {
        const user = await registerUser(one);
        const category = await createCategory(one, user, { name: 'same name' });
        const newTask = () => createTask(one, user, { title: 'same title', tags: [mark] });
        const task = await createTask(one, user, {
          title: 'same title',
          categoryId: category.id,
          tags: [mark],
        });
        await newTask();
        return { user, mark, category, task, newTask };
      }),
    );
    const checks: Promise<void>[] = [];
    for (let round = 0; round < 40; round += 1) {
      const app = round % 2 === 0 ? one : two;
      for (const [i, mine] of users.entries()) {
        const theirs = users[1 - i];
        const reads: Array<[string, (item: any) => boolean]> = [
          ['/v1/tasks', (task) => task.tags[0] === mine.mark],
          ['/v1/tasks?sort=title', (task) => task.tags[0] === mine.mark],
          [`/v1/tasks/${mine.task.id}`, (task) => task.tags[0] === mine.mark],
          ['/v1/categories', (category) => category.id === mine.category.id],
          [`/v1/categories/${mine.category.id}`, (category) => category.id === mine.category.id],
        ];
        for (const [url, isMine] of reads) {
          checks.push(
            get(app, mine.user, url).then((reply) => {
              expect(reply.status).toBe(200);
              const items: unknown[] = reply.body.data ?? [reply.body];
              expect(items.length).toBeGreaterThan(0);
              expect(items.filter((item) => !isMine(item))).toEqual([]);
            }),
          );
        }
        // The other user's task, asked for by id, is not found, cached or not.
        checks.push(
          get(app, mine.user, `/v1/tasks/${theirs.task.id}`).then((reply) =>
            expect(reply.status).toBe(404),
          ),
        );
        if (round % 10 === 0) checks.push(mine.newTask().then(() => undefined));
      }
    }
    await Promise.all(checks);
  });

  it('a write through one instance is read through the other within 100 ms (p99 of 200)', async () => {
    const user = await registerUser(one);
    const task = await createTask(one, user);
    const delays: number[] = [];
    for (let trial = 1; trial <= 200; trial += 1) {
      // Both instances hold the current version.
      await get(one, user, `/v1/tasks/${task.id}`);
      await get(two, user, `/v1/tasks/${task.id}`);
      const written = await patch(one, user, `/v1/tasks/${task.id}`, { title: `t${trial}` });
      expect(written.status).toBe(200);
      const at = performance.now();
      const seen = await eventually(
        () => get(two, user, `/v1/tasks/${task.id}`),
        (reply: Reply<any>) => reply.body.version === written.body.version,
        1000,
        1,
      );
      expect(seen.body.title).toBe(`t${trial}`);
      delays.push(performance.now() - at);
      // On the writer's instance, at once.
      expect((await get(one, user, `/v1/tasks/${task.id}`)).body.version).toBe(
        written.body.version,
      );
    }
    delays.sort((a, b) => a - b);
    const p99 = delays[Math.ceil(delays.length * 0.99) - 1];
    printFigures(
      `write on one instance → read on the other: p50 ${delays[99].toFixed(1)} ms, ` +
        `p99 ${p99.toFixed(1)} ms, max ${delays[199].toFixed(1)} ms`,
    );
    expect(p99).toBeLessThan(100);
  });

  it('deleting a category drops the cached tasks that lose it', async () => {
    const user = await registerUser(one);
    const category = await createCategory(one, user);
    const task = await createTask(one, user, { categoryId: category.id });
    await get(two, user, `/v1/tasks/${task.id}`);
    await get(two, user, `/v1/tasks?categoryId=${category.id}`);
    const removed = await call(one, {
      method: 'DELETE',
      url: `/v1/categories/${category.id}`,
      token: user.accessToken,
    });
    expect(removed.status).toBe(204);
    const reread = await eventually(
      () => get(two, user, `/v1/tasks/${task.id}`),
      (reply: Reply<any>) => reply.body.categoryId === null,
      1000,
    );
    expect(reread.body.categoryId).toBeNull();
    expect((await get(two, user, `/v1/tasks?categoryId=${category.id}`)).body.data).toEqual([]);
    expect((await get(two, user, `/v1/categories/${category.id}`)).status).toBe(404);
  });

  it('500 concurrent requests on a cold key load it once per instance', async () => {
    const user = await registerUser(one);
    const task = await createTask(one, user);
    const loads = [countLoads(one), countLoads(two)];
    const replies = await Promise.all(
      Array.from({ length: 500 }, (_, i) => get(i % 2 ? one : two, user, `/v1/tasks/${task.id}`)),
    );
    expect(replies.every((reply) => reply.status === 200 && reply.body.id === task.id)).toBe(true);
    // Once per instance at most: one may find the other's value in Redis already.
    expect(loads[0].count).toBeLessThanOrEqual(1);
    expect(loads[1].count).toBeLessThanOrEqual(1);
    expect(loads[0].count + loads[1].count).toBeGreaterThanOrEqual(1);
  });

  it('with Postgres cut, recently cached reads come back stale, not 5xx', async () => {
    const database = loadConfig().database.url;
    const proxy = await proxied(database);
    const url = new URL(database);
    url.host = `127.0.0.1:${proxy.port}`;
    const app = await api({
      DATABASE_URL: url.toString(),
      CACHE_TTL_SECONDS: '1',
      CACHE_LOCAL_TTL_MS: '100',
      DATABASE_STATEMENT_TIMEOUT_MS: '500',
      DATABASE_CONNECT_TIMEOUT_MS: '500',
    });
    const user = await registerUser(app);
    const task = await createTask(app, user);
    const cold = await createTask(app, user);
    const reads = [`/v1/tasks/${task.id}`, '/v1/tasks', '/v1/categories'];
    const before = await Promise.all(reads.map((path) => get(app, user, path)));
    await sleep(1100); // no longer fresh anywhere
    for (const fault of [{ kind: 'reset' }, { kind: 'refuse' }, { kind: 'blackhole' }] as const) {
      await proxy.set(fault);
      for (const [i, path] of reads.entries()) {
        const reply = await get(app, user, path);
        expect([reply.status, reply.headers['x-cache'], reply.body]).toEqual([
          200,
          'stale',
          before[i].body,
        ]);
      }
      // Never cached: nothing to fall back on, a clear 5xx problem.
      const uncached = await get(app, user, `/v1/tasks/${cold.id}`);
      expect(uncached.status).toBeGreaterThanOrEqual(500);
      expect(uncached.headers['content-type']).toContain('application/problem+json');
      await proxy.set({ kind: 'pass' });
    }
    // Back: fresh reads again.
    const back = await eventually(
      () => get(app, user, `/v1/tasks/${task.id}`),
      (reply: Reply<any>) => reply.status === 200 && reply.headers['x-cache'] !== 'stale',
      10_000,
    );
    expect(back.body).toEqual(before[0].body);
  });

  it('with Redis cut, reads and writes still succeed', async () => {
    const proxy = await proxied(loadConfig().redis.url);
    const app = await api({ REDIS_URL: `redis://127.0.0.1:${proxy.port}` });
    const user = await registerUser(app);
    const task = await createTask(app, user);
    for (const fault of [{ kind: 'reset' }, { kind: 'refuse' }, { kind: 'blackhole' }] as const) {
      await proxy.set(fault);
      const read = await get(app, user, `/v1/tasks/${task.id}`);
      expect(read.status).toBe(200);
      const written = await patch(app, user, `/v1/tasks/${task.id}`, { title: fault.kind });
      expect(written.status).toBe(200);
      // This instance's own write is read back at once.
      const reread = await get(app, user, `/v1/tasks/${task.id}`);
      expect([reread.status, reread.body.title]).toEqual([200, fault.kind]);
      expect((await get(app, user, '/v1/tasks')).status).toBe(200);
      expect((await createTask(app, user)).id).toBeDefined();
      await proxy.set({ kind: 'pass' });
    }
  });

  it('counts lookups in cache_requests_total by level and result', async () => {
    const metrics = await call(one, { method: 'GET', url: '/metrics' });
    for (const series of [
      'cache_requests_total{level="local",result="hit"}',
      'cache_requests_total{level="local",result="miss"}',
      'cache_requests_total{level="redis",result="hit"}',
      'cache_requests_total{level="redis",result="miss"}',
    ]) {
      expect(metrics.raw).toMatch(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} [1-9]`, 'm'));
    }
  });
});
