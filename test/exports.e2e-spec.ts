import { loadConfig } from '@app/config';
import type { TaskResource } from '@app/database';
import { QUEUES, TASK_EXPORT, addToOutbox, jobQueueTopology, queueName } from '@app/messaging';
import { DegradationFlags } from '@app/resilience';
import {
  FaultProxy,
  type TestUser,
  call,
  createApiKey,
  createTask,
  eventually,
  expectProblem,
  listAll,
  registerUser,
} from '@app/testing';
import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { connect } from 'amqplib';
import { parse } from 'csv-parse/sync';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { createWorkerApp } from '../apps/worker/src/bootstrap';
import { EXPORT_FAILED, TaskExporter } from '../apps/worker/src/exports/task-exporter';
import { startApi } from './app';
import { dropDatabase, ownDatabase } from './databases';
import { deleteJobQueues } from './queues';

const { name: DATABASE, url: DATABASE_URL } = ownDatabase('exports');
const base = loadConfig();
const ENV = {
  DATABASE_URL,
  // Its own flags too: a test here switches exports off.
  REDIS_KEY_PREFIX: `${base.redis.keyPrefix}exports-${randomUUID()}:`,
  RABBITMQ_QUEUE_PREFIX: `${base.rabbitmq.queuePrefix}exports-${randomUUID()}.`,
  JOB_MAX_ATTEMPTS: '2',
  JOB_RETRY_BASE_MS: '100',
  OUTBOX_POLL_MS: '20',
  EXPORT_FETCH_SIZE: '700',
};
const TASKS = 10_000;

interface JobView {
  id: string;
  type: string;
  status: string;
  progress: number;
  processedRows: number;
  totalRows: number | null;
  error?: string;
  resultUrl?: string;
  version: number;
  expiresAt: string | null;
}

/**
 * Task exports end to end (CONTRACT §4): POST /v1/tasks/exports through the outbox to the
 * worker's `exports` queue, the file streamed from a cursor into result chunks with progress,
 * then downloaded; 10 000 tasks in both formats, compared with what GET /v1/tasks answers.
 */
describe('task exports', () => {
  let api: NestFastifyApplication;
  let worker: NestFastifyApplication | undefined;
  let db: DataSource;
  let user: TestUser;
  /** Another user, with one task of their own. */
  let stranger: TestUser;
  let category: string;

  beforeAll(async () => {
    Logger.overrideLogger(false);
    api = await startApi(ENV);
    worker = await createWorkerApp(loadConfig(ENV));
    await worker.init();
    await worker.startAllMicroservices();
    db = api.get(DataSource);
    user = await registerUser(api);
    stranger = await registerUser(api);
    await createTask(api, stranger, { title: 'not yours' });
    [{ id: category }] = await db.query<Array<{ id: string }>>(
      `INSERT INTO categories (user_id, name) VALUES ($1, 'work') RETURNING id`,
      [user.id],
    );
    // Everything CSV must quote (commas, quotes, CR and LF, a leading formula sign), text
    // outside ASCII, nulls, tags holding commas; several tasks share a creation time, so the id
    // decides their order; descriptions long enough for the file to span several 1 MiB chunks.
    await db.query(
      `INSERT INTO tasks (user_id, title, description, status, priority, due_date, tags,
         category_id, created_at)
       SELECT $1,
         format('task %s, "quoted" ✓', g),
         CASE WHEN g % 7 = 0 THEN NULL
              ELSE format(E'line one of %s\\r\\nline two, with =SUM(A1) and "quotes" — ünï %s',
                          g, repeat('x', 250)) END,
         (ARRAY['todo', 'in_progress', 'done'])[g % 3 + 1]::task_status,
         (ARRAY['low', 'medium', 'high', 'urgent'])[g % 4 + 1]::task_priority,
         CASE WHEN g % 5 = 0 THEN NULL ELSE timestamptz '2027-01-01' + g * interval '1 hour' END,
         CASE WHEN g % 2 = 0 THEN ARRAY['even', 'a,b'] ELSE ARRAY[]::text[] END,
         CASE WHEN g % 10 = 0 THEN $2::uuid END,
         timestamptz '2026-06-01' + (g / 3) * interval '1 second'
       FROM generate_series(1, $3) AS g`,
      [user.id, category, TASKS],
    );
  });

  afterAll(async () => {
    await api?.close();
    await worker?.close();
    await deleteJobQueues(loadConfig(ENV));
    await dropDatabase(DATABASE);
  });

  const requestExport = (body: unknown, as: TestUser = user, headers?: Record<string, string>) =>
    call<{ jobId: string }>(api, {
      method: 'POST',
      url: '/v1/tasks/exports',
      token: as.accessToken,
      body,
      headers,
    });
  const job = (id: string, as: TestUser = user) =>
    call<JobView>(api, { method: 'GET', url: `/v1/jobs/${id}`, token: as.accessToken });
  const settled = (id: string, as: TestUser = user) =>
    eventually(
      () => job(id, as),
      (reply) => ['succeeded', 'failed'].includes(reply.body.status),
      30_000,
      25,
    );
  const download = (id: string, as: TestUser = user) =>
    call<string>(api, { method: 'GET', url: `/v1/jobs/${id}/result`, token: as.accessToken });
  /** The tasks as the API lists them, newest first: what an export must hold. */
  const listed = async (query = '') =>
    (await listAll<TaskResource>(api, user, `/v1/tasks?limit=100${query}`)).items;
  async function exported(body: object): Promise<{ job: JobView; file: string; type: string }> {
    const accepted = await requestExport(body);
    expect(accepted.status).toBe(202);
    expect(accepted.headers.location).toBe(`/v1/jobs/${accepted.body.jobId}`);
    const done = await settled(accepted.body.jobId);
    expect(done.body.status).toBe('succeeded');
    const file = await download(accepted.body.jobId);
    expect(file.status).toBe(200);
    return { job: done.body, file: file.raw, type: String(file.headers['content-type']) };
  }
  /** A CSV row back to the task it came from. */
  const fromCsv = (row: Record<string, string>): TaskResource => ({
    id: row.id,
    title: row.title,
    description: row.description === '' ? null : row.description,
    status: row.status as TaskResource['status'],
    priority: row.priority as TaskResource['priority'],
    dueDate: row.dueDate === '' ? null : row.dueDate,
    categoryId: row.categoryId === '' ? null : row.categoryId,
    tags: JSON.parse(row.tags) as string[],
    version: Number(row.version),
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  });

  it('exports 10 000 tasks as CSV (RFC 4180) that reads back as exactly what the API lists', async () => {
    const { job: done, file, type } = await exported({ format: 'csv' });
    expect(type).toBe('text/csv; charset=utf-8');
    expect(done).toMatchObject({
      type: 'tasks.export',
      progress: 100,
      processedRows: TASKS,
      totalRows: TASKS,
      resultUrl: `/v1/jobs/${done.id}/result`,
    });
    expect(done).not.toHaveProperty('error');
    expect(file.split('\r\n', 1)[0]).toBe(
      'id,title,description,status,priority,dueDate,categoryId,tags,version,createdAt,updatedAt',
    );
    expect(Buffer.byteLength(file)).toBeGreaterThan(2 * 1024 * 1024); // several chunks
    const rows = parse<Record<string, string>>(file, { columns: true, record_delimiter: '\r\n' });
    expect(rows.map(fromCsv)).toEqual(await listed());
  });

  it('exports them as NDJSON, each line the task as GET /v1/tasks/:id returns it', async () => {
    const { file, type } = await exported({ format: 'ndjson' });
    expect(type).toBe('application/x-ndjson');
    expect(file.endsWith('\n')).toBe(true);
    const lines = file.slice(0, -1).split('\n');
    const tasks = lines.map((line) => JSON.parse(line) as TaskResource);
    expect(tasks).toEqual(await listed());
    const one = await call(api, {
      method: 'GET',
      url: `/v1/tasks/${tasks[1234].id}`,
      token: user.accessToken,
    });
    expect(one.body).toEqual(tasks[1234]);
  });

  it('applies the filters of GET /v1/tasks, and offers the file as an attachment', async () => {
    const filter = { status: 'done', tag: 'a,b', q: 'QUOTED', dueAfter: '2027-02-01T00:00:00Z' };
    const { job: done, file } = await exported({ format: 'ndjson', filter });
    const expected = await listed(
      `&status=done&tag=${encodeURIComponent('a,b')}&q=QUOTED&dueAfter=2027-02-01T00:00:00Z`,
    );
    expect(expected.length).toBeGreaterThan(100);
    expect(expected.length).toBeLessThan(TASKS / 3);
    const tasks = file
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as TaskResource);
    expect(tasks).toEqual(expected);
    expect(done.totalRows).toBe(expected.length);

    const byCategory = await exported({ format: 'csv', filter: { categoryId: category } });
    expect(byCategory.job.processedRows).toBe(TASKS / 10);
    const reply = await download(done.id);
    expect(reply.headers['content-disposition']).toBe(
      `attachment; filename="tasks-${done.id}.ndjson"`,
    );
    expect(Number(reply.headers['content-length'])).toBe(Buffer.byteLength(reply.raw));
    expect(reply.headers['cache-control']).toBe('private');
  });

  it('an export that matches nothing is a file with only its header', async () => {
    const { job: done, file } = await exported({ format: 'csv', filter: { q: 'no such text' } });
    expect(file).toBe(
      'id,title,description,status,priority,dueDate,categoryId,tags,version,createdAt,updatedAt\r\n',
    );
    expect(done).toMatchObject({ progress: 100, processedRows: 0, totalRows: 0 });
    const empty = await exported({ format: 'ndjson', filter: { q: 'no such text' } });
    expect(empty.file).toBe('');
  });

  it('gives the job a strong ETag, so a poller gets 304 until it changes', async () => {
    const { job: done } = await exported({ format: 'csv', filter: { status: 'todo' } });
    const first = await job(done.id);
    expect(first.headers.etag).toBe(`"v${done.version}"`);
    const again = await call(api, {
      method: 'GET',
      url: `/v1/jobs/${done.id}`,
      token: user.accessToken,
      headers: { 'if-none-match': String(first.headers.etag) },
    });
    expect(again.status).toBe(304);
    expect(new Date(String(done.expiresAt)).getTime() - Date.now()).toBeGreaterThan(23 * 3600e3);
  });

  it('refuses bad requests with a 400 and queues nothing', async () => {
    const [before] = await db.query<Array<{ jobs: number; outbox: number }>>(
      `SELECT (SELECT count(*)::int FROM jobs) AS jobs, (SELECT count(*)::int FROM outbox) AS outbox`,
    );
    for (const body of [
      {},
      { format: 'xlsx' },
      { format: 'csv', extra: true },
      { format: 'csv', filter: 'status=done' },
      { format: 'csv', filter: { status: 'finished' } },
      { format: 'csv', filter: { owner: 'someone else' } },
      { format: 'csv', filter: { categoryId: 'not-a-uuid' } },
      { format: 'csv', filter: { dueBefore: 'tomorrow' } },
      { format: 'csv', filter: { tag: '' } },
    ]) {
      expectProblem(await requestExport(body), 400, 'VALIDATION_FAILED');
    }
    const [after] = await db.query<Array<{ jobs: number; outbox: number }>>(
      `SELECT (SELECT count(*)::int FROM jobs) AS jobs, (SELECT count(*)::int FROM outbox) AS outbox`,
    );
    expect(after).toEqual(before);
  });

  it("keeps each user's jobs to themselves: another user's is 404, and so is its file", async () => {
    const { job: done } = await exported({ format: 'ndjson', filter: { priority: 'urgent' } });
    expectProblem(await job(done.id, stranger), 404, 'NOT_FOUND');
    expectProblem(await download(done.id, stranger), 404, 'NOT_FOUND');
    expectProblem(await job(randomUUID()), 404, 'NOT_FOUND');
    expectProblem(await job('not-a-uuid'), 404, 'NOT_FOUND');
    // The stranger's own export holds the stranger's one task, none of the user's.
    const accepted = await requestExport({ format: 'ndjson' }, stranger);
    expect((await settled(accepted.body.jobId, stranger)).body.status).toBe('succeeded');
    const file = (await download(accepted.body.jobId, stranger)).raw;
    expect(file.trimEnd().split('\n')).toHaveLength(1);
    expect(JSON.parse(file)).toMatchObject({ title: 'not yours' });
  });

  it('needs exports:write and tasks:read to export, and tasks:read to read the job', async () => {
    const asKey = (key: string, method: 'GET' | 'POST', url: string, body?: unknown) =>
      call(api, { method, url, body, headers: { 'x-api-key': key } });
    const readOnly = await createApiKey(api, user, { scopes: ['tasks:read'] });
    const exportOnly = await createApiKey(api, user, { scopes: ['exports:write'] });
    const both = await createApiKey(api, user, { scopes: ['exports:write', 'tasks:read'] });
    const body = { format: 'csv', filter: { priority: 'low' } };
    for (const key of [readOnly, exportOnly]) {
      expectProblem(
        await asKey(key.key, 'POST', '/v1/tasks/exports', body),
        403,
        'INSUFFICIENT_SCOPE',
      );
    }
    const accepted = await asKey(both.key, 'POST', '/v1/tasks/exports', body);
    expect(accepted.status).toBe(202);
    const id = (accepted.body as { jobId: string }).jobId;
    expect((await asKey(readOnly.key, 'GET', `/v1/jobs/${id}`)).status).toBe(200);
    expectProblem(await asKey(exportOnly.key, 'GET', `/v1/jobs/${id}`), 403, 'INSUFFICIENT_SCOPE');
    expectProblem(
      await asKey(exportOnly.key, 'GET', `/v1/jobs/${id}/result`),
      403,
      'INSUFFICIENT_SCOPE',
    );
    expect((await call(api, { method: 'GET', url: `/v1/jobs/${id}` })).status).toBe(401);
  });

  it('replays a retried POST with the same Idempotency-Key: one job, one file', async () => {
    const key = { 'idempotency-key': randomUUID() };
    const body = { format: 'csv', filter: { status: 'in_progress' } };
    const first = await requestExport(body, user, key);
    const retry = await requestExport(body, user, key);
    expect(first.status).toBe(202);
    expect(retry.status).toBe(202);
    expect(retry.body).toEqual(first.body);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.headers.location).toBe(`/v1/jobs/${first.body.jobId}`);
    const [{ n }] = await db.query<Array<{ n: number }>>(
      `SELECT count(*)::int AS n FROM outbox WHERE payload->>'jobId' = $1`,
      [first.body.jobId],
    );
    expect(n).toBe(1);
    expectProblem(
      await requestExport({ format: 'ndjson' }, user, key),
      422,
      'IDEMPOTENCY_KEY_REUSED',
    );
  });

  it('answers 409 for the result of a job not finished yet, and runs a repeated message once', async () => {
    const [{ id }] = await db.query<Array<{ id: string }>>(
      `INSERT INTO jobs (user_id, type, params)
       VALUES ($1, 'tasks.export', '{"format":"csv","filter":{"priority":"high"}}') RETURNING id`,
      [user.id],
    );
    expect((await job(id)).body).toMatchObject({ status: 'queued', progress: 0 });
    expect((await job(id)).body).not.toHaveProperty('resultUrl');
    expectProblem(await download(id), 409, 'JOB_NOT_FINISHED');

    const exporter = worker!.get(TaskExporter);
    expect(await exporter.run(id)).toBe(TASKS / 4);
    const file = (await download(id)).raw;
    // The same message again (at-least-once delivery): nothing to do, the file is untouched.
    expect(await exporter.run(id)).toBeUndefined();
    expect((await download(id)).raw).toBe(file);
    expect((await job(id)).body).toMatchObject({ status: 'succeeded', processedRows: TASKS / 4 });
  });

  it('marks an export that keeps failing as failed after the last attempt, and dead-letters it', async () => {
    // A filter no request could carry (validation refuses it): Postgres fails the export.
    const id = await db.transaction(async (manager) => {
      const [row] = await manager.query<Array<{ id: string }>>(
        `INSERT INTO jobs (user_id, type, params)
         VALUES ($1, 'tasks.export', '{"format":"csv","filter":{"categoryId":"oops"}}')
         RETURNING id`,
        [user.id],
      );
      await addToOutbox(manager, QUEUES.exports, TASK_EXPORT, { jobId: row.id });
      return row.id;
    });
    const failed = await settled(id);
    expect(failed.body).toMatchObject({ status: 'failed', error: EXPORT_FAILED });
    expect(failed.body).not.toHaveProperty('resultUrl');
    expect(failed.body.error).not.toMatch(/uuid|syntax|oops/i);
    const [{ attempts }] = await db.query<Array<{ attempts: number }>>(
      `SELECT attempts FROM jobs WHERE id = $1`,
      [id],
    );
    expect(attempts).toBe(2);
    expectProblem(await download(id), 409, 'JOB_FAILED');
    const config = loadConfig(ENV);
    const amqp = await connect(base.rabbitmq.url);
    try {
      const channel = await amqp.createChannel();
      const dead = jobQueueTopology(config, queueName(config, QUEUES.exports)).dead;
      const message = await eventually(
        () => channel.get(dead, { noAck: true }),
        (m) => m !== false,
        5000,
      );
      expect(message && JSON.parse(message.content.toString())).toMatchObject({
        pattern: TASK_EXPORT,
        data: { jobId: id },
      });
    } finally {
      await amqp.close();
    }
  });

  it('deletes jobs past their expiry with their files; until then an expired one is 404', async () => {
    const { job: done } = await exported({ format: 'csv', filter: { priority: 'medium' } });
    await db.query(`UPDATE jobs SET expires_at = now() - interval '1 second' WHERE id = $1`, [
      done.id,
    ]);
    expectProblem(await job(done.id), 404, 'NOT_FOUND');
    expectProblem(await download(done.id), 404, 'NOT_FOUND');
    const { deleted } = await worker!.get(TaskExporter).sweep();
    expect(deleted).toBeGreaterThanOrEqual(1);
    const [{ jobs, chunks }] = await db.query<Array<{ jobs: number; chunks: number }>>(
      `SELECT (SELECT count(*)::int FROM jobs WHERE id = $1) AS jobs,
              (SELECT count(*)::int FROM job_result_chunks WHERE job_id = $1) AS chunks`,
      [done.id],
    );
    expect({ jobs, chunks }).toEqual({ jobs: 0, chunks: 0 });
  });

  it('gives up on a job that has not moved for an hour, so that no poller waits for ever', async () => {
    const insert = (minutesAgo: number) =>
      db.query<Array<{ id: string }>>(
        `INSERT INTO jobs (user_id, type, params, status, updated_at)
         VALUES ($1, 'tasks.export', '{"format":"csv","filter":{}}', 'running',
                 now() - make_interval(mins => $2))
         RETURNING id`,
        [user.id, minutesAgo],
      );
    const [[abandoned], [alive]] = [await insert(61), await insert(5)];
    const { abandoned: given } = await worker!.get(TaskExporter).sweep();
    expect(given).toBe(1);
    expect((await job(abandoned.id)).body).toMatchObject({
      status: 'failed',
      error: EXPORT_FAILED,
    });
    expect((await job(alive.id)).body).toMatchObject({ status: 'running' });
    await db.query(`DELETE FROM jobs WHERE id = $1`, [alive.id]);
  });

  it('turns exports away with 503 while they are switched off', async () => {
    const flags = api.get(DegradationFlags);
    await flags.update({ features: { exports: false } });
    try {
      const reply = expectProblem(await requestExport({ format: 'csv' }), 503, 'DEGRADED');
      expect(reply.detail).toMatch(/exports/);
    } finally {
      await flags.update({ features: { exports: true } });
    }
    expect((await requestExport({ format: 'csv' })).status).toBe(202);
  });

  describe('a worker whose Postgres is slow, then cut', () => {
    // The default attempts: a cut also breaks the pool's idle connections, and the retry that
    // draws one fails at once.
    const SLOW = { ...ENV, EXPORT_FETCH_SIZE: '250', JOB_MAX_ATTEMPTS: '5' };
    let slow: NestFastifyApplication;
    let proxy: FaultProxy;
    beforeAll(async () => {
      await worker?.close();
      worker = undefined;
      const url = new URL(DATABASE_URL);
      proxy = await FaultProxy.start({ host: url.hostname, port: Number(url.port || 5432) });
      url.host = `127.0.0.1:${proxy.port}`;
      slow = await createWorkerApp(loadConfig({ ...SLOW, DATABASE_URL: url.toString() }));
      await slow.init();
      await slow.startAllMicroservices();
      await proxy.set({ kind: 'latency', ms: 10 });
    });
    afterAll(async () => {
      await slow?.close();
      await proxy?.close();
      await deleteJobQueues(loadConfig(SLOW));
    });

    /** Polls the job until it settles; returns every view seen on the way. */
    async function watch(id: string, seen: JobView[] = []): Promise<JobView[]> {
      await eventually(
        async () => {
          const { body } = await job(id);
          seen.push(body);
          return body;
        },
        (body) => body.status === 'succeeded' || body.status === 'failed',
        60_000,
        20,
      );
      return seen;
    }

    it('shows its progress while it runs', async () => {
      const accepted = await requestExport({ format: 'ndjson' });
      const seen = await watch(accepted.body.jobId);
      expect(seen[seen.length - 1]).toMatchObject({
        status: 'succeeded',
        progress: 100,
        processedRows: TASKS,
      });
      const running = seen.filter((s) => s.status === 'running' && s.processedRows > 0);
      // Seen part-way, rising, in steps of whole fetches, and never 100 before the end.
      expect(new Set(running.map((s) => s.progress)).size).toBeGreaterThanOrEqual(2);
      for (const s of running) {
        expect(s.processedRows % 250).toBe(0);
        expect(s.totalRows).toBe(TASKS);
        // 100 only once the file is whole: the last fetch shows 99 until the job succeeds.
        expect(s.progress).toBe(Math.min(99, Math.floor((s.processedRows * 100) / TASKS)));
      }
      const progress = seen.map((s) => s.progress);
      expect(progress).toEqual([...progress].sort((a, b) => a - b));
    });

    it('a run cut off half-way leaves no partial file: the retry writes it whole, once', async () => {
      const accepted = await requestExport({ format: 'csv' });
      const id = accepted.body.jobId;
      const partWay = await eventually(
        () => job(id),
        (reply) => reply.body.processedRows >= 2000,
        30_000,
        20,
      );
      expect(partWay.body.status).toBe('running');
      await proxy.set({ kind: 'reset' });
      await sleep(200);
      await proxy.set({ kind: 'latency', ms: 10 });
      const seen = await watch(id);
      expect(seen[seen.length - 1]).toMatchObject({ status: 'succeeded', processedRows: TASKS });
      const [{ attempts }] = await db.query<Array<{ attempts: number }>>(
        `SELECT attempts FROM jobs WHERE id = $1`,
        [id],
      );
      expect(attempts).toBeGreaterThanOrEqual(2);
      const rows = parse<Record<string, string>>((await download(id)).raw, {
        columns: true,
        record_delimiter: '\r\n',
      });
      expect(rows.map(fromCsv)).toEqual(await listed());
    });
  });
});
