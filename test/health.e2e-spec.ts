import { Lifecycle } from '@app/health';
import { call, expectProblem, createTask, registerUser } from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { AsyncResource } from 'node:async_hooks';
import { DataSource } from 'typeorm';
import { startApi } from './app';

describe('probes, metrics, request ids and docs (CONTRACT §1, §2, §8)', () => {
  let app: NestFastifyApplication;
  beforeAll(async () => {
    app = await startApi();
  });
  afterAll(() => app.close());

  it('runs with the lean AsyncResource#bind (no accessor per bound function to promote requests)', () => {
    // Installed by createApiApp (libs/http/src/lean-async-bind.ts); Node's own adds it up to 24.
    const bound = new AsyncResource('spec').bind(() => undefined);
    expect(Object.getOwnPropertyDescriptor(bound, 'asyncResource')).toBeUndefined();
  });

  describe('probes', () => {
    it('live and ready answer without credentials, outside /v1', async () => {
      const live = await call(app, { method: 'GET', url: '/health/live' });
      expect(live.status).toBe(200);
      expect(live.body).toEqual({ status: 'ok' });
      // Only authenticated responses are private.
      expect(live.headers['cache-control']).toBeUndefined();
      const ready = await call(app, { method: 'GET', url: '/health/ready' });
      expect(ready.status).toBe(200);
      expect(ready.body.status).toBe('ok');
      expect(ready.body.details).toMatchObject({
        database: { status: 'up' },
        redis: { status: 'up' },
        rabbitmq: { status: 'up' },
        lifecycle: { status: 'up', state: 'serving' },
        breakers: { status: 'up', postgres: 'closed', redis: 'closed', rabbitmq: 'closed' },
      });
      expect((await call(app, { method: 'GET', url: '/v1/health/ready' })).status).toBe(404);
    });

    it('Redis and RabbitMQ unreachable: ready stays 200 and says degraded', async () => {
      const degraded = await startApi({
        REDIS_URL: 'redis://127.0.0.1:1',
        RABBITMQ_URL: 'amqp://guest:guest@127.0.0.1:1',
      });
      try {
        const started = Date.now();
        const ready = await call(degraded, { method: 'GET', url: '/health/ready' });
        expect(Date.now() - started).toBeLessThan(5000); // bounded, never a hang
        expect(ready.status).toBe(200);
        expect(ready.body.status).toBe('ok');
        expect(Object.keys(ready.body.degraded).sort()).toEqual(['rabbitmq', 'redis']);
        expect(ready.body.details.database.status).toBe('up');
        // And the API itself still serves.
        const user = await registerUser(degraded);
        expect((await createTask(degraded, user)).id).toBeDefined();
      } finally {
        await degraded.close();
      }
    });

    it('draining: ready turns 503 while live stays 200', async () => {
      const draining = await startApi();
      try {
        draining.get(Lifecycle).startDraining();
        const ready = await call(draining, { method: 'GET', url: '/health/ready' });
        expect(ready.status).toBe(503);
        expect(ready.body.error.lifecycle).toEqual({ status: 'down', state: 'draining' });
        expect((await call(draining, { method: 'GET', url: '/health/live' })).status).toBe(200);
      } finally {
        await draining.close();
      }
    });

    it('database unreachable: ready 503, live 200', async () => {
      const cut = await startApi();
      try {
        await cut.get(DataSource).destroy();
        const ready = await call(cut, { method: 'GET', url: '/health/ready' });
        expect(ready.status).toBe(503);
        expect(ready.body.error.database.status).toBe('down');
        expect((await call(cut, { method: 'GET', url: '/health/live' })).status).toBe(200);
      } finally {
        await cut.close().catch(() => undefined);
      }
    });
  });

  describe('/metrics', () => {
    it('counts requests by route template, never by raw path', async () => {
      const user = await registerUser(app);
      const task = await createTask(app, user);
      await call(app, { method: 'GET', url: `/v1/tasks/${task.id}`, token: user.accessToken });
      await call(app, { method: 'GET', url: '/v1/no-such-route' });
      const metrics = await call<string>(app, { method: 'GET', url: '/metrics' });
      expect(metrics.status).toBe(200);
      expect(metrics.headers['content-type']).toContain('text/plain');
      const text = metrics.body;
      expect(text).toMatch(
        /^http_requests_total\{method="GET",route="\/v1\/tasks\/:id",status="200"\} [1-9]/m,
      );
      expect(text).toMatch(
        /^http_requests_total\{method="GET",route="unmatched",status="404"\} [1-9]/m,
      );
      expect(text).toMatch(
        /^http_request_duration_seconds_bucket\{le="0\.005",method="GET",route="\/v1\/tasks\/:id",status="200"\} \d+/m,
      );
      expect(text).toContain('# TYPE http_request_duration_seconds histogram');
      expect(text).not.toContain(task.id);
      expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
      expect(text).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
    });

    it('is valid exposition text: every sample line is name{labels} value', async () => {
      const text = (await call<string>(app, { method: 'GET', url: '/metrics' })).body;
      const samples = text.split('\n').filter((line) => line && !line.startsWith('#'));
      expect(samples.length).toBeGreaterThan(20);
      for (const line of samples) {
        expect(line).toMatch(
          /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?(\d+(\.\d+)?(e[+-]?\d+)?|[Nn]a[Nn]|\+Inf|-Inf)$/,
        );
      }
    });
  });

  describe('X-Request-ID', () => {
    it("echoes a client's sane id on success and in problem details", async () => {
      const ok = await call(app, {
        method: 'GET',
        url: '/health/live',
        headers: { 'x-request-id': 'trace-42' },
      });
      expect(ok.headers['x-request-id']).toBe('trace-42');
      const problem = await call(app, {
        method: 'GET',
        url: '/v1/tasks',
        headers: { 'x-request-id': 'trace-43' },
      });
      expect(problem.status).toBe(401);
      expect(problem.headers['x-request-id']).toBe('trace-43');
      expect(problem.body.requestId).toBe('trace-43');
    });

    it('replaces an unsafe id with a new UUID', async () => {
      const reply = await call(app, {
        method: 'GET',
        url: '/v1/nowhere',
        headers: { 'x-request-id': '<script>alert(1)</script>' },
      });
      expect(reply.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(reply.body.requestId).toBe(reply.headers['x-request-id']);
      expect(reply.body.code).toBe('NOT_FOUND');
    });

    it('a URL Fastify cannot decode is a 400 problem too, with the request id', async () => {
      const reply = await call(app, {
        method: 'GET',
        url: '/v1/tasks/%E0%A4%A',
        headers: { 'x-request-id': 'trace-44' },
      });
      const problem = expectProblem(reply, 400, 'BAD_REQUEST');
      expect(problem.requestId).toBe('trace-44');
    });
  });

  describe('OpenAPI', () => {
    it('serves the UI at /docs and OpenAPI 3 at /docs-json, every /v1 route with its errors', async () => {
      expect((await call(app, { method: 'GET', url: '/docs' })).status).toBe(200);
      const doc = (await call(app, { method: 'GET', url: '/docs-json' })).body;
      expect(doc.openapi).toMatch(/^3\./);
      const operations = Object.entries(doc.paths as Record<string, Record<string, any>>)
        .filter(([path]) => path.startsWith('/v1/'))
        .flatMap(([path, methods]) =>
          Object.entries(methods).map(([method, op]) => ({ path, method, op })),
        );
      expect(operations.map((o) => `${o.method.toUpperCase()} ${o.path}`)).toEqual(
        expect.arrayContaining([
          'POST /v1/auth/register',
          'POST /v1/auth/login',
          'POST /v1/auth/refresh',
          'GET /v1/users/me',
          'POST /v1/tasks',
          'GET /v1/tasks',
          'GET /v1/tasks/{id}',
          'PATCH /v1/tasks/{id}',
          'DELETE /v1/tasks/{id}',
          'POST /v1/categories',
          'GET /v1/categories',
          'GET /v1/categories/{id}',
          'PATCH /v1/categories/{id}',
          'DELETE /v1/categories/{id}',
          'POST /v1/api-keys',
          'GET /v1/api-keys',
          'GET /v1/api-keys/{id}',
          'DELETE /v1/api-keys/{id}',
          'GET /v1/admin/users',
          'PATCH /v1/admin/users/{id}',
        ]),
      );
      for (const { path, method, op } of operations) {
        const errors = Object.keys(op.responses).filter((status) => /^[45]/.test(status));
        expect({ route: `${method} ${path}`, documentsErrors: errors.length > 0 }).toEqual({
          route: `${method} ${path}`,
          documentsErrors: true,
        });
        const problem = op.responses[errors[0]].content?.['application/problem+json'];
        expect(problem).toBeDefined();
      }
    });

    it('documents If-Match and its 412 on every PATCH, PUT and DELETE under /v1', async () => {
      const doc = (await call(app, { method: 'GET', url: '/docs-json' })).body;
      const writes = Object.entries(doc.paths as Record<string, Record<string, any>>)
        .filter(([path]) => path.startsWith('/v1/'))
        .flatMap(([path, methods]) =>
          Object.entries(methods)
            .filter(([method]) => ['patch', 'put', 'delete'].includes(method))
            .map(([method, op]) => ({
              route: `${method.toUpperCase()} ${path}`,
              ifMatch: (op.parameters ?? []).some(
                (p: { in: string; name: string }) => p.in === 'header' && p.name === 'If-Match',
              ),
              412: op.responses['412'] !== undefined,
            })),
        );
      // Every write route the API has, versioned or not: none may ignore If-Match.
      expect(writes.map((write) => write.route).sort()).toEqual([
        'DELETE /v1/admin/rate-limits/{identifier}',
        'DELETE /v1/api-keys/{id}',
        'DELETE /v1/categories/{id}',
        'DELETE /v1/tasks/{id}',
        'DELETE /v1/webhooks/{id}',
        'PATCH /v1/admin/users/{id}',
        'PATCH /v1/categories/{id}',
        'PATCH /v1/tasks/{id}',
        'PATCH /v1/webhooks/{id}',
        'PUT /v1/admin/flags',
        'PUT /v1/admin/rate-limits/{identifier}',
      ]);
      for (const write of writes) {
        expect(write).toEqual({ route: write.route, ifMatch: true, 412: true });
      }
    });
  });
});
