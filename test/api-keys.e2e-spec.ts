import { ApiKeyUsage, SCOPES, generateApiKey } from '@app/auth';
import {
  call,
  createApiKey,
  createTask,
  expectProblem,
  expectValidationError,
  registerUser,
  type Reply,
  type TestUser,
} from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createHash, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Pool } from 'pg';
import { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { startApi } from './app';

const KEY_FORMAT = /^thk_[0-9A-Za-z]{38}$/;

/** API keys: CONTRACT §3, issue 3 (format, hashing, scopes, revocation, expiry, last use). */
describe('API keys', () => {
  let app: NestFastifyApplication;
  let db: DataSource;
  let owner: TestUser;
  beforeAll(async () => {
    app = await startApi();
    db = app.get(DataSource);
    owner = await registerUser(app);
  });
  afterAll(() => app.close());

  const withKey = (key: string, method: 'GET' | 'POST' | 'DELETE', url: string, body?: unknown) =>
    call(app, { method, url, headers: { 'x-api-key': key }, body });
  const create = (user: TestUser, body: unknown, headers?: Record<string, string>) =>
    call(app, { method: 'POST', url: '/v1/api-keys', token: user.accessToken, body, headers });

  describe('creation', () => {
    it('answers the key once, with its description, and stores only its SHA-256', async () => {
      const reply = await create(owner, { name: '  CI pipeline ', scopes: ['tasks:read'] });
      expect(reply.status).toBe(201);
      const { key, ...described } = reply.body;
      expect(key).toMatch(KEY_FORMAT);
      expect(described).toEqual({
        id: expect.any(String),
        name: 'CI pipeline',
        prefix: key.slice(0, 12),
        scopes: ['tasks:read'],
        tier: null,
        expiresAt: null,
        lastUsedAt: null,
        createdAt: expect.any(String),
      });
      expect(reply.headers.location).toBe(`/v1/api-keys/${described.id}`);

      const [row] = await db.query(`SELECT * FROM api_keys WHERE id = $1`, [described.id]);
      expect(row.key_hash).toEqual(createHash('sha256').update(key).digest());
      expect(JSON.stringify(row)).not.toContain(key.slice(12));

      const read = await call(app, {
        method: 'GET',
        url: `/v1/api-keys/${described.id}`,
        token: owner.accessToken,
      });
      expect(read.status).toBe(200);
      expect(read.body).toEqual(described);
      const list = await call(app, {
        method: 'GET',
        url: '/v1/api-keys',
        token: owner.accessToken,
      });
      expect(list.body.data).toContainEqual(described);
      expect(list.raw).not.toContain(key);
    });

    it('a replayed Idempotency-Key creates nothing and answers without the key', async () => {
      const headers = { 'idempotency-key': randomUUID() };
      const body = { name: 'replayed', scopes: ['tasks:read', 'tasks:write'] };
      const first = await create(owner, body, headers);
      const again = await create(owner, body, headers);
      expect(first.status).toBe(201);
      expect(again.status).toBe(201);
      expect(again.headers['idempotent-replayed']).toBe('true');
      const { key, ...described } = first.body;
      expect(again.body).toEqual(described);
      const [{ count }] = await db.query(
        `SELECT count(*)::int AS count FROM api_keys WHERE user_id = $1 AND name = 'replayed'`,
        [owner.id],
      );
      expect(count).toBe(1);
      const [stored] = await db.query(`SELECT response_body FROM idempotency_keys WHERE key = $1`, [
        headers['idempotency-key'],
      ]);
      expect(JSON.stringify(stored)).not.toContain(key);
    });

    it.each([
      [{ scopes: ['tasks:read'] }, 'name'],
      [{ name: '', scopes: ['tasks:read'] }, 'name'],
      [{ name: 'x'.repeat(101), scopes: ['tasks:read'] }, 'name'],
      [{ name: 'k' }, 'scopes'],
      [{ name: 'k', scopes: [] }, 'scopes'],
      [{ name: 'k', scopes: ['tasks:delete'] }, 'scopes'],
      [{ name: 'k', scopes: ['tasks:read', 'tasks:read'] }, 'scopes'],
      [{ name: 'k', scopes: 'tasks:read' }, 'scopes'],
      [{ name: 'k', scopes: ['tasks:read'], expiresAt: 'tomorrow' }, 'expiresAt'],
      [{ name: 'k', scopes: ['tasks:read'], expiresAt: '2020-01-01T00:00:00Z' }, 'expiresAt'],
      [{ name: 'k', scopes: ['tasks:read'], tier: 'anonymous' }, 'tier'],
      [{ name: 'k', scopes: ['tasks:read'], tier: 'platinum' }, 'tier'],
      [{ name: 'k', scopes: ['tasks:read'], userId: randomUUID() }, 'userId'],
    ])('refuses %j (400, nothing created)', async (body, field) => {
      const before = await keysOf(owner);
      expectValidationError(await create(owner, body), field);
      expect(await keysOf(owner)).toBe(before);
    });

    it('null expiresAt and tier mean "never" and "the owner\'s", for anyone', async () => {
      const reply = await create(owner, {
        name: 'explicit nulls',
        scopes: ['tasks:read'],
        expiresAt: null,
        tier: null,
      });
      expect(reply.status).toBe(201);
      expect(reply.body).toMatchObject({ expiresAt: null, tier: null });
    });

    it('only an administrator may set a tier or the admin scope (403, nothing created)', async () => {
      const before = await keysOf(owner);
      expectProblem(await create(owner, { name: 'k', scopes: ['admin'] }), 403, 'FORBIDDEN');
      expectProblem(
        await create(owner, { name: 'k', scopes: ['tasks:read'], tier: 'pro' }),
        403,
        'FORBIDDEN',
      );
      expect(await keysOf(owner)).toBe(before);
    });

    it('an API key cannot manage API keys: a key must never mint itself a broader one', async () => {
      const { key } = await createApiKey(app, owner, {
        scopes: [...SCOPES.filter((s) => s !== 'admin')],
      });
      const before = await keysOf(owner);
      for (const reply of [
        await withKey(key, 'POST', '/v1/api-keys', { name: 'k', scopes: ['tasks:write'] }),
        await withKey(key, 'GET', '/v1/api-keys'),
      ]) {
        expectProblem(reply, 403, 'FORBIDDEN');
      }
      expect(await keysOf(owner)).toBe(before);
    });
  });

  describe('authentication with X-API-Key', () => {
    it("acts as its owner, over the owner's data only, and says what it is on whoami", async () => {
      const other = await registerUser(app);
      const mine = await createTask(app, owner, { title: 'visible to my key' });
      const theirs = await createTask(app, other);
      const { id, key } = await createApiKey(app, owner, { scopes: ['tasks:read'] });

      const list = await withKey(key, 'GET', '/v1/tasks?limit=100');
      expect(list.status).toBe(200);
      const ids = list.body.data.map((task: { id: string }) => task.id);
      expect(ids).toContain(mine.id);
      expect(ids).not.toContain(theirs.id);
      expect((await withKey(key, 'GET', `/v1/tasks/${mine.id}`)).status).toBe(200);
      expectProblem(await withKey(key, 'GET', `/v1/tasks/${theirs.id}`), 404, 'NOT_FOUND');

      const whoami = await withKey(key, 'GET', '/v1/auth/whoami');
      expect(whoami.body).toEqual({
        credential: 'apiKey',
        userId: owner.id,
        role: 'user',
        tier: 'free',
        apiKeyId: id,
        scopes: ['tasks:read'],
      });
      expect(whoami.headers['cache-control']).toBe('private');
    });

    it('a key without the scope a route needs gets 403 INSUFFICIENT_SCOPE, and changes nothing', async () => {
      const { key } = await createApiKey(app, owner, { scopes: ['tasks:read'] });
      const task = await createTask(app, owner);
      const tasksBefore = await tasksOf(owner);
      const problem = expectProblem(
        await withKey(key, 'POST', '/v1/tasks', { title: 'not allowed' }),
        403,
        'INSUFFICIENT_SCOPE',
      );
      expect(problem.detail).toContain('tasks:write');
      expectProblem(
        await withKey(key, 'DELETE', `/v1/tasks/${task.id}`),
        403,
        'INSUFFICIENT_SCOPE',
      );
      expectProblem(await withKey(key, 'GET', '/v1/categories'), 403, 'INSUFFICIENT_SCOPE');
      expect(await tasksOf(owner)).toBe(tasksBefore);

      const writer = await createApiKey(app, owner, { scopes: ['tasks:write'] });
      expect((await withKey(writer.key, 'POST', '/v1/tasks', { title: 'allowed' })).status).toBe(
        201,
      );
      expectProblem(await withKey(writer.key, 'GET', '/v1/tasks'), 403, 'INSUFFICIENT_SCOPE');
    });

    describe('refused keys: 401, with no database query for a malformed one', () => {
      let pool: Pool;
      let valid: string;
      beforeAll(async () => {
        pool = (db.driver as PostgresDriver).master as Pool;
        valid = (await createApiKey(app, owner)).key;
      });
      afterEach(() => jest.restoreAllMocks());

      const refused = (reply: Reply) => {
        const problem = expectProblem(reply, 401, 'UNAUTHENTICATED');
        expect(reply.headers['www-authenticate']).toBe('ApiKey');
        return problem;
      };
      /** The number of connections taken from the pool while `work` runs: every query takes one. */
      const queriesDuring = async (work: () => Promise<unknown>) => {
        const connect = jest.spyOn(pool, 'connect');
        await work();
        return connect.mock.calls.length;
      };

      it.each([
        ['not our format', () => 'sk_live_123'],
        ['thk_ and too short', () => 'thk_abc'],
        ['one character too many', () => `${valid}a`],
        ['a character outside base62', () => `${valid.slice(0, 20)}-${valid.slice(21)}`],
        ['a bad checksum', () => `${valid.slice(0, -1)}${valid.endsWith('0') ? '1' : '0'}`],
        [
          'a typo in the random part',
          () => `${valid.slice(0, 10)}${valid[10] === 'a' ? 'b' : 'a'}${valid.slice(11)}`,
        ],
      ])('%s', async (_name, key) => {
        const queries = await queriesDuring(async () =>
          refused(await withKey(key(), 'GET', '/v1/auth/whoami')),
        );
        expect(queries).toBe(0);
      });

      it('a well-formed key nobody holds is looked up, then refused', async () => {
        const unknown = generateApiKey().key;
        const queries = await queriesDuring(async () =>
          refused(await withKey(unknown, 'GET', '/v1/auth/whoami')),
        );
        // The spy does see queries: the malformed keys above really made none.
        expect(queries).toBe(1);
      });

      it('an empty X-API-Key counts as no credential', async () => {
        const reply = await withKey('', 'GET', '/v1/auth/whoami');
        expectProblem(reply, 401, 'UNAUTHENTICATED');
        expect(reply.headers['www-authenticate']).toBe('Bearer');
      });
    });

    it('an expired key is refused, even while its verification is cached', async () => {
      const expiresAt = new Date(Date.now() + 1500).toISOString();
      const { key } = await createApiKey(app, owner, { expiresAt });
      expect((await withKey(key, 'GET', '/v1/auth/whoami')).status).toBe(200);
      await sleep(Date.parse(expiresAt) - Date.now() + 50);
      expectProblem(await withKey(key, 'GET', '/v1/auth/whoami'), 401, 'UNAUTHENTICATED');
    });

    it('a key whose owner was deleted is refused', async () => {
      const user = await registerUser(app);
      const { key } = await createApiKey(app, user);
      await db.query('DELETE FROM users WHERE id = $1', [user.id]);
      // Straight from the database (no cached verification of this key yet).
      expectProblem(await withKey(key, 'GET', '/v1/auth/whoami'), 401, 'UNAUTHENTICATED');
    });
  });

  describe('revocation', () => {
    it('DELETE revokes at once on this instance; the key leaves the list and stays on record', async () => {
      const { id, key } = await createApiKey(app, owner);
      expect((await withKey(key, 'GET', '/v1/tasks')).status).toBe(200); // cached now
      const revoked = await call(app, {
        method: 'DELETE',
        url: `/v1/api-keys/${id}`,
        token: owner.accessToken,
      });
      expect(revoked.status).toBe(204);
      expectProblem(await withKey(key, 'GET', '/v1/tasks'), 401, 'UNAUTHENTICATED');

      const list = await call(app, {
        method: 'GET',
        url: '/v1/api-keys',
        token: owner.accessToken,
      });
      expect(list.body.data.map((k: { id: string }) => k.id)).not.toContain(id);
      const [row] = await db.query(`SELECT revoked_at FROM api_keys WHERE id = $1`, [id]);
      expect(row.revoked_at).toBeInstanceOf(Date);
      for (const method of ['GET', 'DELETE'] as const) {
        expectProblem(
          await call(app, { method, url: `/v1/api-keys/${id}`, token: owner.accessToken }),
          404,
          'NOT_FOUND',
        );
      }
    });

    it("another user's key is 404 for GET and DELETE, and keeps working", async () => {
      const { id, key } = await createApiKey(app, owner);
      const intruder = await registerUser(app);
      for (const method of ['GET', 'DELETE'] as const) {
        expectProblem(
          await call(app, { method, url: `/v1/api-keys/${id}`, token: intruder.accessToken }),
          404,
          'NOT_FOUND',
        );
      }
      const list = await call(app, {
        method: 'GET',
        url: '/v1/api-keys',
        token: intruder.accessToken,
      });
      expect(list.body).toEqual({ data: [], nextCursor: null });
      expect((await withKey(key, 'GET', '/v1/tasks')).status).toBe(200);
    });

    it.each(['nope', '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b0', randomUUID()])(
      'an id %p that names no key of the caller is 404',
      async (id) => {
        expectProblem(
          await call(app, {
            method: 'DELETE',
            url: `/v1/api-keys/${id}`,
            token: owner.accessToken,
          }),
          404,
          'NOT_FOUND',
        );
      },
    );
  });

  it('every /v1 route is @Public() or states its @Scopes(): without a credential 401, never a 500', async () => {
    const doc = (await call(app, { method: 'GET', url: '/docs-json' })).body;
    const operations = Object.entries(doc.paths as Record<string, Record<string, any>>)
      .filter(([path]) => path.startsWith('/v1/'))
      .flatMap(([path, methods]) =>
        Object.entries(methods).map(([method, op]) => ({
          route: `${method.toUpperCase()} ${path}`,
          url: path.replace('{id}', randomUUID()),
          method: method.toUpperCase() as 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
          secured: Array.isArray(op.security) && op.security.length > 0,
        })),
      );
    expect(operations.filter((o) => !o.secured).map((o) => o.route)).toEqual(
      expect.arrayContaining(['POST /v1/auth/register', 'POST /v1/auth/login']),
    );
    expect(
      operations
        .filter((o) => !o.secured)
        .map((o) => o.route)
        .sort(),
    ).toEqual(['POST /v1/auth/login', 'POST /v1/auth/refresh', 'POST /v1/auth/register']);
    // A scope no route asks for yet: the key is authenticated, and allowed nowhere that needs one.
    const { key } = await createApiKey(app, owner, { scopes: ['webhooks:read'] });
    for (const { route, url, method } of operations.filter((o) => o.secured)) {
      const anonymous = await call(app, { method, url, body: method === 'GET' ? undefined : {} });
      const keyed = await withKey(key, method as 'GET', url, method === 'GET' ? undefined : {});
      expect({ route, anonymous: anonymous.status, keyed: keyed.status === 500 }).toEqual({
        route,
        anonymous: 401,
        keyed: false,
      });
    }
  });

  it('lists keys newest first, page by page', async () => {
    const user = await registerUser(app);
    const created: string[] = [];
    for (let i = 0; i < 5; i += 1) created.push((await createApiKey(app, user)).id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/v1/api-keys?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = await call(app, { method: 'GET', url, token: user.accessToken });
      expect(page.status).toBe(200);
      expect(page.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.data.map((k: { id: string }) => k.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...created].reverse());
    expectValidationError(
      await call(app, { method: 'GET', url: '/v1/api-keys?limit=101', token: user.accessToken }),
      'limit',
    );
  });

  it('last_used_at is written off the request path, at most once a minute', async () => {
    const usage = app.get(ApiKeyUsage);
    const { id, key } = await createApiKey(app, owner);
    expect((await withKey(key, 'GET', '/v1/tasks')).status).toBe(200);
    const lastUsed = async () =>
      (
        (await db.query(`SELECT last_used_at FROM api_keys WHERE id = $1`, [id]))[0] as {
          last_used_at: Date | null;
        }
      ).last_used_at;
    // Not by the request itself: only by the next flush.
    expect(await lastUsed()).toBeNull();
    await usage.flush();
    const first = await lastUsed();
    expect(first).toBeInstanceOf(Date);
    expect(Date.now() - first!.getTime()).toBeLessThan(10_000);

    await sleep(20);
    expect((await withKey(key, 'GET', '/v1/tasks')).status).toBe(200);
    await usage.flush();
    expect(await lastUsed()).toEqual(first);
    const read = await call(app, {
      method: 'GET',
      url: `/v1/api-keys/${id}`,
      token: owner.accessToken,
    });
    expect(read.body.lastUsedAt).toBe(first!.toISOString());
  });

  async function keysOf(user: TestUser): Promise<number> {
    const [{ count }] = await db.query<{ count: number }[]>(
      `SELECT count(*)::int AS count FROM api_keys WHERE user_id = $1`,
      [user.id],
    );
    return count;
  }

  async function tasksOf(user: TestUser): Promise<number> {
    const [{ count }] = await db.query<{ count: number }[]>(
      `SELECT count(*)::int AS count FROM tasks WHERE user_id = $1`,
      [user.id],
    );
    return count;
  }
});
