import {
  type Reply,
  type TestUser,
  call,
  createApiKey,
  eventually,
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
    /** The resource is the caller's own: another user's is 404 like a missing one. */
    owned?: boolean;
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
      owned: true,
    },
    'DELETE /v1/api-keys/:id': {
      method: 'DELETE',
      make: async () => ({ url: `/v1/api-keys/${(await createApiKey(app, user)).id}` }),
      missing: `/v1/api-keys/${randomUUID()}`,
      state: (url) => db.query(`SELECT revoked_at FROM api_keys WHERE id = $1`, [lastSegment(url)]),
      as: () => user,
      ok: 204,
      owned: true,
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

  const send = (
    write: Write,
    url: string,
    body: unknown,
    ifMatch: string,
    as = write.as(),
  ): Promise<Reply<any>> =>
    call(app, {
      method: write.method,
      url,
      token: as.accessToken,
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

    if (write.owned) {
      it("another user's: 404 whatever the If-Match, and nothing changed", async () => {
        const { url, body } = await write.make();
        const before = await write.state(url);
        const intruder = await registerUser(app);
        for (const tag of ['"garbage"', '*']) {
          expectProblem(await send(write, url, body, tag, intruder), 404, 'NOT_FOUND');
        }
        expect(await write.state(url)).toEqual(before);
      });
    }
  });

  it('a refused DELETE /v1/api-keys/:id leaves the key working', async () => {
    const key = await createApiKey(app, user);
    const url = `/v1/api-keys/${key.id}`;
    const refused = await call(app, {
      method: 'DELETE',
      url,
      token: user.accessToken,
      headers: { 'if-match': '"garbage"' },
    });
    expectProblem(refused, 412, 'PRECONDITION_FAILED');
    const used = await call(app, {
      method: 'GET',
      url: '/v1/tasks',
      headers: { 'x-api-key': key.key },
    });
    expect(used.status).toBe(200);
  });

  it('PATCH /v1/admin/users/:id evaluates If-Match before the body, as tasks do: 412 for {}', async () => {
    const target = await registerUser(app);
    const url = `/v1/admin/users/${target.id}`;
    const patch = (ifMatch: string) =>
      call(app, {
        method: 'PATCH',
        url,
        token: admin.accessToken,
        body: {},
        headers: { 'if-match': ifMatch },
      });
    expectProblem(await patch('"garbage"'), 412, 'PRECONDITION_FAILED');
    // Then the body: a PATCH that changes nothing is still refused.
    expectProblem(await patch('*'), 400, 'VALIDATION_FAILED');
  });

  describe('PUT /v1/admin/rate-limits/:identifier with If-Match: *', () => {
    /** Backends of this database waiting for a lock on a rate-limit override. */
    const waitingForALock = async (): Promise<number> => {
      const [row] = await db.query<{ count: number }[]>(
        `SELECT count(*)::int AS count FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock'
            AND query ILIKE '%rate_limit_configs%'`,
      );
      return row.count;
    };

    it('replaces only: deleted while it waits for the row, it is 412 and creates nothing', async () => {
      const url = await newOverride();
      const identifier = lastSegment(url);
      const stored = () =>
        db.query(`SELECT * FROM rate_limit_configs WHERE identifier = $1`, [identifier]);
      // A concurrent DELETE, held at the point where the PUT has found the override.
      const deleter = db.createQueryRunner();
      await deleter.connect();
      try {
        await deleter.startTransaction();
        await deleter.query(`SELECT 1 FROM rate_limit_configs WHERE identifier = $1 FOR UPDATE`, [
          identifier,
        ]);
        const put = call(app, {
          method: 'PUT',
          url,
          token: admin.accessToken,
          body: { requestsPerMinute: 9 },
          headers: { 'if-match': '*' },
        });
        expect(await eventually(waitingForALock, (count) => count > 0, 5000)).toBeGreaterThan(0);
        await deleter.query(`DELETE FROM rate_limit_configs WHERE identifier = $1`, [identifier]);
        await deleter.commitTransaction();
        expectProblem(await put, 412, 'PRECONDITION_FAILED');
        expect(await stored()).toEqual([]);
      } finally {
        if (deleter.isTransactionActive) await deleter.rollbackTransaction();
        await deleter.release();
      }
    });
  });
});
