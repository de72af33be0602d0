import {
  type Reply,
  type TestUser,
  call,
  createApiKey,
  expectProblem,
  registerUser,
} from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { startApi } from './app';

/**
 * If-Match on the writes to resources that have no version and so no ETag (webhooks, API keys,
 * rate-limit overrides, users, flags) is evaluated as RFC 9110 §13.1.1 says for a representation
 * without an entity tag, never dropped: no tag can match (412, nothing changed), `*` holds while
 * the resource exists, a malformed header is 400, and a missing resource is still 404.
 */
describe('If-Match on resources without versions', () => {
  let app: NestFastifyApplication;
  let db: DataSource;
  let user: TestUser;
  let admin: TestUser;

  beforeAll(async () => {
    app = await startApi({ WEBHOOK_ALLOW_HOSTS: '127.0.0.1' });
    db = app.get(DataSource);
    user = await registerUser(app);
    admin = await registerUser(app);
    await db.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [admin.id]);
  });
  afterAll(() => app.close());

  interface Write {
    method: 'DELETE' | 'PATCH' | 'PUT';
    /** The route's path for a resource it makes, and what the write sends. */
    make(): Promise<{ url: string; body?: unknown }>;
    /** A path naming nothing. */
    missing: string;
    /** The resource as stored, to show that a refused write changed nothing. */
    state(url: string): Promise<unknown>;
    as: () => TestUser;
    ok: number;
    /** A PUT that creates what it names. */
    creates?: boolean;
    /** Its write leaves the state as it was (flags already so: the run's flags are shared). */
    idempotent?: boolean;
  }

  /** A rate-limit override of a client of its own; its path. */
  async function newOverride(): Promise<string> {
    const url = `/v1/admin/rate-limits/user:${randomUUID()}`;
    const put = await call(app, {
      method: 'PUT',
      url,
      token: admin.accessToken,
      body: { requestsPerMinute: 5 },
    });
    expect(put.status).toBe(201);
    return url;
  }

  const lastSegment = (url: string) => decodeURIComponent(url.split('/').pop()!);
  const WRITES: Record<string, Write> = {
    'DELETE /v1/webhooks/:id': {
      method: 'DELETE',
      make: async () => {
        const reply = await call(app, {
          method: 'POST',
          url: '/v1/webhooks',
          token: user.accessToken,
          body: { url: 'http://127.0.0.1:9/hook', events: ['task.created'] },
        });
        expect(reply.status).toBe(201);
        return { url: `/v1/webhooks/${reply.body.id}` };
      },
      missing: `/v1/webhooks/${randomUUID()}`,
      state: (url) => db.query(`SELECT * FROM webhooks WHERE id = $1`, [lastSegment(url)]),
      as: () => user,
      ok: 204,
    },
    'DELETE /v1/api-keys/:id': {
      method: 'DELETE',
      make: async () => ({ url: `/v1/api-keys/${(await createApiKey(app, user)).id}` }),
      missing: `/v1/api-keys/${randomUUID()}`,
      state: (url) => db.query(`SELECT revoked_at FROM api_keys WHERE id = $1`, [lastSegment(url)]),
      as: () => user,
      ok: 204,
    },
    'PATCH /v1/admin/users/:id': {
      method: 'PATCH',
      make: async () => ({
        url: `/v1/admin/users/${(await registerUser(app)).id}`,
        body: { tier: 'pro' },
      }),
      missing: `/v1/admin/users/${randomUUID()}`,
      state: (url) => db.query(`SELECT role, tier FROM users WHERE id = $1`, [lastSegment(url)]),
      as: () => admin,
      ok: 200,
    },
    'PUT /v1/admin/rate-limits/:identifier': {
      method: 'PUT',
      make: async () => ({ url: await newOverride(), body: { requestsPerMinute: 7 } }),
      missing: `/v1/admin/rate-limits/user:${randomUUID()}`,
      state: (url) =>
        db.query(`SELECT * FROM rate_limit_configs WHERE identifier = $1`, [lastSegment(url)]),
      as: () => admin,
      ok: 200,
      creates: true,
    },
    'DELETE /v1/admin/rate-limits/:identifier': {
      method: 'DELETE',
      make: async () => ({ url: await newOverride() }),
      missing: `/v1/admin/rate-limits/user:${randomUUID()}`,
      state: (url) =>
        db.query(`SELECT * FROM rate_limit_configs WHERE identifier = $1`, [lastSegment(url)]),
      as: () => admin,
      ok: 204,
    },
    'PUT /v1/admin/flags': {
      method: 'PUT',
      make: () => Promise.resolve({ url: '/v1/admin/flags', body: { features: { search: true } } }),
      // One set of flags, always there: nothing can be missing.
      missing: '',
      state: async () =>
        (
          await call<unknown>(app, {
            method: 'GET',
            url: '/v1/admin/flags',
            token: admin.accessToken,
          })
        ).body,
      as: () => admin,
      ok: 200,
      idempotent: true,
    },
  };

  const send = (write: Write, url: string, body: unknown, ifMatch: string): Promise<Reply<any>> =>
    call(app, {
      method: write.method,
      url,
      token: write.as().accessToken,
      body: write.method === 'DELETE' ? undefined : body,
      headers: { 'if-match': ifMatch },
    });

  describe.each(Object.entries(WRITES))('%s', (_name, write) => {
    it('an entity tag cannot match: 412, and nothing changed', async () => {
      const { url, body } = await write.make();
      const before = await write.state(url);
      for (const tag of ['"garbage"', '"v1"', 'W/"v1", "v2"']) {
        expectProblem(await send(write, url, body, tag), 412, 'PRECONDITION_FAILED');
      }
      expect(await write.state(url)).toEqual(before);
    });

    it('a malformed If-Match is 400, and nothing changed', async () => {
      const { url, body } = await write.make();
      const before = await write.state(url);
      expectProblem(await send(write, url, body, ' , '), 400, 'BAD_REQUEST');
      expect(await write.state(url)).toEqual(before);
    });

    it('If-Match: * holds while it exists: the write is done', async () => {
      const { url, body } = await write.make();
      const before = await write.state(url);
      expect((await send(write, url, body, '*')).status).toBe(write.ok);
      if (!write.idempotent) expect(await write.state(url)).not.toEqual(before);
    });

    if (write.missing) {
      it(
        write.creates
          ? 'on a resource that does not exist, 412 for * and a tag alike, and nothing is created'
          : 'on a resource that does not exist, 404 comes first',
        async () => {
          const { body } = await write.make();
          for (const tag of ['"v1"', '*']) {
            const reply = await send(write, write.missing, body, tag);
            if (write.creates) expectProblem(reply, 412, 'PRECONDITION_FAILED');
            else expectProblem(reply, 404, 'NOT_FOUND');
          }
          if (write.creates) expect(await write.state(write.missing)).toEqual([]);
        },
      );
    }
  });
});
