import { loadConfig } from '@app/config';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import createClient from 'openapi-fetch';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createWorkerApp } from '../apps/worker/src/bootstrap';
import { startApi } from './app';
import type { paths } from './client/taskhub-api';
import { dropDatabase, ownDatabase } from './databases';
import { deleteJobQueues } from './queues';

const { name: DATABASE, url: DATABASE_URL } = ownDatabase('client_tour');
const base = loadConfig();
const ENV = {
  DATABASE_URL,
  RABBITMQ_QUEUE_PREFIX: `${base.rabbitmq.queuePrefix}tour-${randomUUID()}.`,
  OUTBOX_POLL_MS: '20',
};

/**
 * The README's API tour, walked through a client generated from the committed openapi.json
 * (openapi-typescript's types, test/client/taskhub-api.d.ts, written by `npm run openapi:client`
 * before the type check; openapi-fetch to call): the document is good enough to build on, and
 * this file compiles against it under `strict`, so a field the document mistypes fails the build.
 */
describe('the API tour through a generated client', () => {
  let api: NestFastifyApplication;
  let worker: NestFastifyApplication;
  let client: ReturnType<typeof createClient<paths>>;

  beforeAll(async () => {
    api = await startApi(ENV);
    await api.listen({ port: 0, host: '127.0.0.1' });
    worker = await createWorkerApp(loadConfig(ENV));
    await worker.init();
    await worker.startAllMicroservices();
    const { port } = api.getHttpServer().address() as { port: number };
    client = createClient<paths>({ baseUrl: `http://127.0.0.1:${port}` });
  });
  afterAll(async () => {
    await api?.close();
    await worker?.close();
    await deleteJobQueues(loadConfig(ENV));
    await dropDatabase(DATABASE);
  });

  it('registers, creates, lists, updates conditionally, refreshes, uses an API key and exports', async () => {
    const registered = await client.POST('/v1/auth/register', {
      body: {
        email: `ada-${randomUUID()}@example.com`,
        password: 'correct horse battery',
        name: 'Ada',
      },
    });
    expect(registered.response.status).toBe(201);
    const { accessToken, refreshToken } = registered.data!;
    const bearer = { authorization: `Bearer ${accessToken}` };

    const me = await client.GET('/v1/users/me', { headers: bearer });
    expect(me.data?.name).toBe('Ada');

    const category = await client.POST('/v1/categories', {
      headers: bearer,
      body: { name: 'Work', color: '#3b82f6' },
    });
    expect(category.response.status).toBe(201);
    const categoryId = category.data!.id;

    // A retried POST with the same Idempotency-Key is the same 201.
    const body = {
      title: 'Quarterly report',
      priority: 'high' as const,
      dueDate: '2026-12-01T17:00:00Z',
      categoryId,
      tags: ['finance'],
    };
    const headers = { ...bearer, 'Idempotency-Key': '6f1c0a52-report' };
    const created = await client.POST('/v1/tasks', { headers, body });
    const replayed = await client.POST('/v1/tasks', { headers, body });
    expect(created.response.status).toBe(201);
    expect(created.response.headers.get('location')).toBe(`/v1/tasks/${created.data!.id}`);
    expect(replayed.response.headers.get('idempotent-replayed')).toBe('true');
    expect(replayed.data?.id).toBe(created.data!.id);
    const task = created.data!;

    const listed = await client.GET('/v1/tasks', {
      headers: bearer,
      params: {
        query: { status: 'todo', priority: 'high', q: 'report', sort: 'dueDate', limit: 20 },
      },
    });
    expect(listed.data?.data.map((t) => t.id)).toEqual([task.id]);
    expect(listed.data?.nextCursor).toBeNull();

    const etag = created.response.headers.get('etag')!;
    const notModified = await client.GET('/v1/tasks/{id}', {
      headers: { ...bearer, 'If-None-Match': etag },
      params: { path: { id: task.id } },
    });
    expect(notModified.response.status).toBe(304);
    const done = await client.PATCH('/v1/tasks/{id}', {
      headers: { ...bearer, 'If-Match': etag },
      params: { path: { id: task.id } },
      body: { status: 'done' },
    });
    expect(done.data?.status).toBe('done');
    const stale = await client.DELETE('/v1/tasks/{id}', {
      headers: { ...bearer, 'If-Match': etag },
      params: { path: { id: task.id } },
    });
    expect(stale.response.status).toBe(412);
    expect(stale.error?.code).toBe('PRECONDITION_FAILED');

    const refreshed = await client.POST('/v1/auth/refresh', { body: { refreshToken } });
    expect(refreshed.data?.refreshToken).not.toBe(refreshToken);

    const key = await client.POST('/v1/api-keys', {
      headers: bearer,
      body: { name: 'CI', scopes: ['tasks:read'], expiresAt: '2099-06-01T00:00:00Z' },
    });
    expect(key.response.status).toBe(201);
    const withKey = { 'x-api-key': key.data!.key };
    expect((await client.GET('/v1/tasks', { headers: withKey })).response.status).toBe(200);
    const refused = await client.POST('/v1/tasks', { headers: withKey, body: { title: 'x' } });
    expect(refused.error?.code).toBe('INSUFFICIENT_SCOPE');
    const whoami = await client.GET('/v1/auth/whoami', { headers: withKey });
    expect(whoami.data?.credential).toBe('apiKey');
    const keys = await client.GET('/v1/api-keys', { headers: bearer });
    expect(keys.data?.data.map((k) => k.id)).toEqual([key.data!.id]);
    const revoked = await client.DELETE('/v1/api-keys/{id}', {
      headers: bearer,
      params: { path: { id: key.data!.id } },
    });
    expect(revoked.response.status).toBe(204);

    const exported = await client.POST('/v1/tasks/exports', {
      headers: bearer,
      body: { format: 'csv', filter: { tag: 'finance' } },
    });
    expect(exported.response.status).toBe(202);
    const jobId = exported.data!.jobId;
    let status = '';
    for (let polls = 0; polls < 100 && status !== 'succeeded'; polls += 1) {
      const job = await client.GET('/v1/jobs/{id}', {
        headers: bearer,
        params: { path: { id: jobId } },
      });
      status = job.data!.status;
      if (status !== 'succeeded') await sleep(100);
    }
    expect(status).toBe('succeeded');
    const file = await client.GET('/v1/jobs/{id}/result', {
      headers: bearer,
      params: { path: { id: jobId } },
      parseAs: 'text',
    });
    expect(file.response.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(file.data).toContain('Quarterly report');
  });
});
