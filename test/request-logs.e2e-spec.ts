import { loadConfig } from '@app/config';
import { Publisher, QUEUES, REQUEST_LOG_BATCH, RequestLogEntry } from '@app/messaging';
import {
  FaultProxy,
  type TestUser,
  call,
  createApiKey,
  eventually,
  expectProblem,
  registerUser,
} from '@app/testing';
import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { createWorkerApp } from '../apps/worker/src/bootstrap';
import { RequestLogStore } from '../apps/worker/src/request-logs/request-log.store';
import { startApi } from './app';
import { deleteJobQueues } from './queues';
import { dropDatabase, ownDatabase } from './databases';

const { name: DATABASE, url: DATABASE_URL } = ownDatabase('request_logs');
const base = loadConfig();
const PREFIX = `${base.rabbitmq.queuePrefix}request-logs-${randomUUID()}.`;
const ENV = {
  DATABASE_URL,
  RABBITMQ_QUEUE_PREFIX: PREFIX,
  REQUEST_LOG_ENABLED: 'true',
  REQUEST_LOG_FLUSH_MS: '100',
  JOB_RETRY_BASE_MS: '100',
};

interface Counts {
  requests: number;
  clientErrors: number;
  serverErrors: number;
}
interface Bucket extends Counts {
  start: string;
  errorRate: number;
  latencyMs: { p50: number; p95: number; p99: number };
}
interface StoredRow {
  request_id: string;
  user_id: string;
  route: string;
  status_code: number;
  error_code: string | null;
  method: string;
}

/** A metric's value in an app's /metrics (labels as written there, e.g. `{queue="x"}`). */
async function metric(app: NestFastifyApplication, series: string): Promise<number> {
  const text = (await call(app, { method: 'GET', url: '/metrics' })).raw;
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/**
 * The request log end to end (CONTRACT §8): an api records its requests and publishes them in
 * batches, the worker stores each batch once in daily partitions, and /v1/admin/usage reads them.
 * Real RabbitMQ (queues of this spec's own) and Postgres (a database of its own, so the usage
 * figures cover only the requests made here).
 */
describe('the request log and /v1/admin/usage', () => {
  let api: NestFastifyApplication;
  let worker: NestFastifyApplication;
  let db: DataSource;
  let admin: TestUser;
  const since = new Date(Date.now() - 60_000).toISOString();

  beforeAll(async () => {
    api = await startApi(ENV);
    worker = await createWorkerApp(loadConfig(ENV));
    await worker.init();
    await worker.startAllMicroservices();
    db = api.get(DataSource);
    admin = await registerUser(api);
    await db.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [admin.id]);
  });

  afterAll(async () => {
    await api?.close();
    await worker?.close();
    await deleteJobQueues(loadConfig(ENV));
    await dropDatabase(DATABASE);
  });

  const usage = (query: string, token = admin.accessToken) =>
    call(api, { method: 'GET', url: `/v1/admin/usage${query}`, token });

  it("counts an API key's requests, their errors and latencies, as they were answered", async () => {
    const user = await registerUser(api);
    const key = await createApiKey(api, user, { scopes: ['tasks:read'] });
    const asKey = (url: string) =>
      call(api, { method: 'GET', url, headers: { 'x-api-key': key.key } });
    const answered = [
      ...(await Promise.all(Array.from({ length: 5 }, () => asKey('/v1/tasks')))),
      ...(await Promise.all(Array.from({ length: 3 }, () => asKey(`/v1/tasks/${randomUUID()}`)))),
      ...(await Promise.all(Array.from({ length: 2 }, () => asKey('/v1/tasks?limit=1000')))),
    ];
    expect(answered.map((r) => r.status)).toEqual([
      200, 200, 200, 200, 200, 404, 404, 404, 400, 400,
    ]);

    const query = `?from=${since}&apiKeyId=${key.id}`;
    const total = (buckets: Bucket[], field: keyof Counts = 'requests') =>
      buckets.reduce((n, bucket) => n + bucket[field], 0);
    const reply = await eventually(
      () => usage(query),
      (r) => r.status === 200 && total(r.body.data as Bucket[]) === 10,
      10_000,
      100,
    );
    expect(reply.status).toBe(200);
    const buckets = reply.body.data as Bucket[];
    const sum = (field: keyof Counts) => total(buckets, field);
    expect([sum('requests'), sum('clientErrors'), sum('serverErrors')]).toEqual([10, 5, 0]);
    expect(reply.body).toMatchObject({ groupBy: 'minute', apiKeyId: key.id });
    for (const bucket of buckets) {
      expect(bucket.start).toMatch(/:00\.000Z$/);
      expect(bucket.errorRate).toBe(0);
      expect(bucket.latencyMs.p50).toBeGreaterThan(0);
      expect(bucket.latencyMs.p99).toBeGreaterThanOrEqual(bucket.latencyMs.p50);
    }

    // What was stored: one row per request, with its id, route template and problem code.
    const rows = await db.query<StoredRow[]>(
      `SELECT request_id, user_id, route, status_code, error_code, method
         FROM request_logs WHERE api_key_id = $1 ORDER BY request_id`,
      [key.id],
    );
    expect(rows.map((r) => r.request_id).sort()).toEqual(
      answered.map((r) => String(r.headers['x-request-id'])).sort(),
    );
    expect(new Set(rows.map((r) => r.user_id))).toEqual(new Set([user.id]));
    const byRoute = rows.map((r) => `${r.method} ${r.route} ${r.status_code} ${r.error_code}`);
    expect(byRoute.sort()).toEqual(
      [
        ...Array(5).fill('GET /v1/tasks 200 null'),
        ...Array(3).fill('GET /v1/tasks/:id 404 NOT_FOUND'),
        ...Array(2).fill('GET /v1/tasks 400 VALIDATION_FAILED'),
      ].sort(),
    );
    // Probes and scrapes are not request-logged.
    await call(api, { method: 'GET', url: '/health/live' });
    await call(api, { method: 'GET', url: '/metrics' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const [{ count }] = await db.query<[{ count: number }]>(
      `SELECT count(*)::int AS count FROM request_logs WHERE route IN ('/health/live', '/metrics')`,
    );
    expect(count).toBe(0);
  });

  it('is for administrators, and refuses bad ranges with 400', async () => {
    const user = await registerUser(api);
    expectProblem(await usage('', user.accessToken), 403, 'FORBIDDEN');
    expectProblem(await usage('?groupBy=day'), 400, 'VALIDATION_FAILED');
    expectProblem(await usage('?apiKeyId=nope'), 400, 'VALIDATION_FAILED');
    expectProblem(await usage('?from=yesterday'), 400, 'VALIDATION_FAILED');
    expectProblem(
      await usage('?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z'),
      400,
      'VALIDATION_FAILED',
    );
    // Minutes: a day at most; hours: 31 days.
    expectProblem(
      await usage('?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:01Z'),
      400,
      'VALIDATION_FAILED',
    );
    const hours = await usage('?from=2026-01-01T00:00:00Z&to=2026-01-30T00:00:00Z&groupBy=hour');
    expect([hours.status, hours.body.data]).toEqual([200, []]);
  });

  it('stores a batch delivered twice (same message id) once', async () => {
    const publisher = api.get(Publisher);
    const requestId = `twice-${randomUUID()}`;
    const entry: RequestLogEntry = [
      Date.now(),
      requestId,
      null,
      null,
      'GET',
      '/v1/tasks',
      200,
      1.5,
      '203.0.113.7',
      'spec',
      null,
    ];
    // Watched, not replaced: each delivery's store() runs as it would.
    const store = jest.spyOn(worker.get(RequestLogStore), 'store');
    const messageId = randomUUID();
    try {
      for (let i = 0; i < 2; i += 1) {
        await publisher.publish(
          QUEUES.requestLogs,
          REQUEST_LOG_BATCH,
          { v: 1, entries: [entry] },
          {
            messageId,
          },
        );
      }
      const ours = () => store.mock.calls.flatMap(([id], n) => (id === messageId ? [n] : []));
      await eventually(
        () => Promise.resolve(ours().length),
        (n) => n === 2,
        10_000,
        20,
      );
      // One delivery stored the row, the other found the message id claimed and wrote nothing.
      const written = await Promise.all(
        ours().map((n) => store.mock.results[n].value as Promise<number>),
      );
      expect(written.sort()).toEqual([0, 1]);
    } finally {
      store.mockRestore();
    }
    const rows = await db.query<Array<{ ip: string; user_agent: string }>>(
      `SELECT ip, user_agent FROM request_logs WHERE request_id = $1`,
      [requestId],
    );
    expect(rows).toEqual([{ ip: '203.0.113.7', user_agent: 'spec' }]);
  });

  it('keeps daily partitions: creates the day it writes to, drops those past retention', async () => {
    const store = worker.get(RequestLogStore);
    await db.query(`CREATE TABLE request_logs_p20200101 PARTITION OF request_logs
                      FOR VALUES FROM ('2020-01-01T00:00:00Z') TO ('2020-01-02T00:00:00Z')`);
    const old = Date.UTC(2020, 0, 1, 12);
    // An entry older than the retention is not stored (nor a partition made for it).
    expect(
      await store.store(randomUUID(), {
        v: 1,
        entries: [[old, 'too-old', null, null, 'GET', '/x', 200, 1, null, null, null]],
      }),
    ).toBe(0);
    expect(await store.maintain()).toEqual(['request_logs_p20200101']);
    const partitions = await db.query<Array<{ name: string }>>(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'request_logs'`,
    );
    const today = new Date().toISOString().slice(0, 10).replaceAll('-', '');
    expect(partitions.map((p) => p.name)).toContain(`request_logs_p${today}`);
    expect(partitions.map((p) => p.name)).not.toContain('request_logs_p20200101');
  });

  it('with RabbitMQ cut, requests are served, the buffer stays bounded and drops are counted; healed, what was kept arrives once', async () => {
    Logger.overrideLogger(false);
    const broker = new URL(base.rabbitmq.url);
    const proxy = await FaultProxy.start({
      host: broker.hostname,
      port: Number(broker.port || 5672),
    });
    const proxied = new URL(base.rabbitmq.url);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    await proxy.set({ kind: 'blackhole' });
    const cut = await startApi({
      ...ENV,
      RABBITMQ_URL: proxied.toString(),
      REQUEST_LOG_BUFFER_MAX: '30',
      REQUEST_LOG_BATCH_SIZE: '10',
      REQUEST_LOG_FLUSH_MS: '50',
      BREAKER_RABBITMQ_TIMEOUT_MS: '300',
    });
    try {
      const dropped = () => metric(cut, 'request_log_dropped_total');
      const droppedBefore = await dropped();
      const user = await registerUser(cut); // one entry (no principal)
      const replies = await Promise.all(
        Array.from({ length: 100 }, () =>
          call(cut, { method: 'GET', url: '/v1/tasks', token: user.accessToken }),
        ),
      );
      expect(replies.every((r) => r.status === 200)).toBe(true);
      // 101 entries, 30 kept: the registration and the first 29 reads.
      expect((await dropped()) - droppedBefore).toBe(71);

      await proxy.set({ kind: 'pass' });
      const stored = () =>
        db
          .query<[{ count: number }]>(
            `SELECT count(*)::int AS count FROM request_logs WHERE user_id = $1`,
            [user.id],
          )
          .then(([row]) => row.count);
      expect(await eventually(stored, (n) => n === 29, 30_000, 200)).toBe(29);
      // Batches the client had kept through the outage and sent again are not stored twice.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(await stored()).toBe(29);
    } finally {
      await cut.close();
      await proxy.close();
    }
  });
});
