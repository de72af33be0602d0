import { loadConfig } from '@app/config';
import { RateLimitOverrides } from '@app/rate-limit';
import {
  ISO_UTC,
  call,
  eventually,
  expectProblem,
  expectValidationError,
  registerUser,
} from '@app/testing';
import type { Reply, TestUser } from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { startApi } from './app';
import { dropDatabase, ownDatabase } from './databases';
import { freePort, runBuilt, waitFor } from './processes';
import type { Running } from './processes';

/**
 * The list is every override in the table, and the limiter counts 127.0.0.1 once per Redis
 * prefix: so this file has a database and a Redis prefix of its own, which other specs of the
 * run can neither add overrides to nor spend our requests from. The prefix extends the run's,
 * so global-teardown removes its keys; afterAll drops the database.
 */
const run = loadConfig();
const { name: DATABASE, url: DATABASE_URL } = ownDatabase('overrides');
const ENV = {
  DATABASE_URL,
  REDIS_KEY_PREFIX: `${run.redis.keyPrefix}overrides:`,
  RATE_LIMIT_ENABLED: 'true',
};

const FREE_TIER_LIMIT = '1000';
const PATH = '/v1/admin/rate-limits';

interface Row {
  identifier: string;
  requests_per_minute: number;
  reason: string | null;
  expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const TIMESTAMPS = {
  createdAt: expect.stringMatching(ISO_UTC),
  updatedAt: expect.stringMatching(ISO_UTC),
};

/** An override as the API writes it: these fields and no other. */
function expectOverride(item: Record<string, unknown>): void {
  expect(Object.keys(item).sort()).toEqual([
    'createdAt',
    'expiresAt',
    'identifier',
    'reason',
    'requestsPerMinute',
    'updatedAt',
  ]);
  expect(item).toMatchObject({
    ...TIMESTAMPS,
    identifier: expect.stringMatching(/^(key|user|ip):.+$/),
    requestsPerMinute: expect.any(Number),
  });
  expect(item.reason === null || typeof item.reason === 'string').toBe(true);
  expect(
    item.expiresAt === null || (typeof item.expiresAt === 'string' && ISO_UTC.test(item.expiresAt)),
  ).toBe(true);
}

describe('admin rate-limit overrides (CONTRACT §6)', () => {
  let app: NestFastifyApplication;
  let db: DataSource;
  let admin: TestUser;
  let plain: TestUser;
  beforeAll(async () => {
    app = await startApi(ENV);
    db = app.get(DataSource);
    admin = await registerUser(app);
    await db.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [admin.id]);
    plain = await registerUser(app);
  });
  afterAll(async () => {
    await app?.close();
    await dropDatabase(DATABASE);
  });

  const asAdmin = () => ({ token: admin.accessToken });
  const put = (identifier: string, body: unknown, as: { token?: string } = asAdmin()) =>
    call(app, { method: 'PUT', url: `${PATH}/${identifier}`, body, ...as });
  const getOne = (identifier: string, as: { token?: string } = asAdmin()) =>
    call(app, { method: 'GET', url: `${PATH}/${identifier}`, ...as });
  const list = (query = '', as: { token?: string } = asAdmin()) =>
    call(app, { method: 'GET', url: `${PATH}${query}`, ...as });
  const remove = (identifier: string, as: { token?: string } = asAdmin()) =>
    call(app, { method: 'DELETE', url: `${PATH}/${identifier}`, ...as });
  /** A request that counts against `user`'s limit, on this instance. */
  const me = (user: TestUser) =>
    call(app, { method: 'GET', url: '/v1/users/me', token: user.accessToken });

  const rows = () => db.query<Row[]>(`SELECT * FROM rate_limit_configs ORDER BY identifier`);
  async function stored(identifier: string): Promise<Row | undefined> {
    const [row] = await db.query<Row[]>(`SELECT * FROM rate_limit_configs WHERE identifier = $1`, [
      identifier,
    ]);
    return row;
  }
  const fresh = () => `user:${randomUUID()}`;
  const inAMinute = () => new Date(Date.now() + 60_000).toISOString();

  describe('who may call', () => {
    let existing: string;
    beforeAll(async () => {
      existing = fresh();
      expect((await put(existing, { requestsPerMinute: 50, reason: 'kept' })).status).toBe(201);
    });

    const routes = (as: { token?: string }, other: string) => [
      put(other, { requestsPerMinute: 10 }, as),
      put(existing, { requestsPerMinute: 1 }, as),
      list('', as),
      getOne(existing, as),
      remove(existing, as),
    ];

    it('without a credential every route is 401, and nothing is written', async () => {
      const before = await rows();
      const other = fresh();
      for (const reply of await Promise.all(routes({}, other))) {
        expectProblem(reply, 401, 'UNAUTHENTICATED');
      }
      expect(await rows()).toEqual(before);
      expect(await stored(other)).toBeUndefined();
    });

    it('a user who is not an administrator gets 403 on every route, and nothing is written', async () => {
      const before = await rows();
      const other = fresh();
      for (const reply of await Promise.all(routes({ token: plain.accessToken }, other))) {
        expectProblem(reply, 403, 'FORBIDDEN');
      }
      expect(await rows()).toEqual(before);
      expect(await stored(other)).toBeUndefined();
      expect(await stored(existing)).toMatchObject({ requests_per_minute: 50, reason: 'kept' });
    });
  });

  describe('PUT /v1/admin/rate-limits/:identifier', () => {
    it('creates (201, Location), then replaces (200): createdAt kept, omitted fields cleared', async () => {
      const identifier = fresh();
      const expiresAt = inAMinute();
      const created = await put(identifier, {
        requestsPerMinute: 42,
        reason: 'noisy integration',
        expiresAt,
      });
      expect(created.status).toBe(201);
      expect(created.body).toEqual({
        ...TIMESTAMPS,
        identifier,
        requestsPerMinute: 42,
        reason: 'noisy integration',
        expiresAt,
      });
      expect(created.body.updatedAt).toBe(created.body.createdAt);
      expect(created.headers.location).toBe(`${PATH}/${identifier}`);
      const read = await getOne(identifier);
      expect(read.status).toBe(200);
      expect(read.body).toEqual(created.body);
      expect(await stored(identifier)).toEqual({
        identifier,
        requests_per_minute: 42,
        reason: 'noisy integration',
        expires_at: new Date(expiresAt),
        created_at: new Date(created.body.createdAt),
        updated_at: new Date(created.body.updatedAt),
      });

      const replaced = await put(identifier, { requestsPerMinute: 7 });
      expect(replaced.status).toBe(200);
      expect(replaced.headers.location).toBeUndefined();
      expect(replaced.body).toEqual({
        ...TIMESTAMPS,
        identifier,
        requestsPerMinute: 7,
        reason: null,
        expiresAt: null,
        createdAt: created.body.createdAt,
      });
      expect(new Date(replaced.body.updatedAt).getTime()).toBeGreaterThan(
        new Date(created.body.createdAt).getTime(),
      );
      expect((await getOne(identifier)).body).toEqual(replaced.body);
      expect(
        await db.query(`SELECT count(*)::int AS n FROM rate_limit_configs WHERE identifier = $1`, [
          identifier,
        ]),
      ).toEqual([{ n: 1 }]);
    });

    it('two PUTs of a new identifier at once: one creates, the other replaces', async () => {
      const identifier = fresh();
      const replies = await Promise.all([
        put(identifier, { requestsPerMinute: 11 }),
        put(identifier, { requestsPerMinute: 12 }),
      ]);
      expect(replies.map((reply) => reply.status).sort()).toEqual([200, 201]);
      const last = replies.find((reply) => reply.status === 200)?.body;
      expect(await stored(identifier)).toMatchObject({
        requests_per_minute: last.requestsPerMinute,
      });
    });

    it('takes the smallest and largest limits, and a null reason and expiresAt', async () => {
      for (const requestsPerMinute of [1, 10_000_000]) {
        const identifier = fresh();
        const reply = await put(identifier, { requestsPerMinute, reason: null, expiresAt: null });
        expect(reply.status).toBe(201);
        expect(reply.body).toMatchObject({ requestsPerMinute, reason: null, expiresAt: null });
        expect(await stored(identifier)).toMatchObject({ requests_per_minute: requestsPerMinute });
      }
    });

    it.each<[string, string, string]>([
      ['an encoded colon', 'ip%3A198.51.100.7', 'ip:198.51.100.7'],
      ['an IPv6 /64 with an encoded slash', 'ip:2001:db8:7::%2F64', 'ip:2001:db8:7::/64'],
      ['everything encoded', 'ip%3A2001%3Adb8%3A8%3A%3A%2F64', 'ip:2001:db8:8::/64'],
      [
        'an API key',
        'key:0f0e0d0c-0b0a-4090-8070-605040302010',
        'key:0f0e0d0c-0b0a-4090-8070-605040302010',
      ],
    ])(
      'routes an identifier with %s, and its Location leads back to it',
      async (_name, path, identifier) => {
        const created = await put(path, { requestsPerMinute: 9 });
        expect(created.status).toBe(201);
        expect(created.body.identifier).toBe(identifier);
        expect(await stored(identifier)).toMatchObject({ requests_per_minute: 9 });
        const location = String(created.headers.location);
        expect(location.startsWith(`${PATH}/`)).toBe(true);
        const followed = await call(app, { method: 'GET', url: location, ...asAdmin() });
        expect(followed.body).toEqual(created.body);
        // Encoded or not, one resource.
        const again = await put(encodeURIComponent(identifier), { requestsPerMinute: 8 });
        expect(again.status).toBe(200);
        expect((await getOne(path)).body.requestsPerMinute).toBe(8);
      },
    );

    it.each<[string, unknown, string | undefined]>([
      ['no requestsPerMinute', {}, 'requestsPerMinute'],
      ['requestsPerMinute 0', { requestsPerMinute: 0 }, 'requestsPerMinute'],
      ['a negative requestsPerMinute', { requestsPerMinute: -5 }, 'requestsPerMinute'],
      ['requestsPerMinute over 10 000 000', { requestsPerMinute: 10_000_001 }, 'requestsPerMinute'],
      ['a huge requestsPerMinute', { requestsPerMinute: 1e300 }, 'requestsPerMinute'],
      ['a fractional requestsPerMinute', { requestsPerMinute: 2.5 }, 'requestsPerMinute'],
      ['requestsPerMinute as a string', { requestsPerMinute: '100' }, 'requestsPerMinute'],
      ['a null requestsPerMinute', { requestsPerMinute: null }, 'requestsPerMinute'],
      ['a reason over 500 characters', { requestsPerMinute: 5, reason: 'x'.repeat(501) }, 'reason'],
      ['a reason that is not a string', { requestsPerMinute: 5, reason: 5 }, 'reason'],
      [
        'an expiresAt in the past',
        { requestsPerMinute: 5, expiresAt: '2020-01-01T00:00:00Z' },
        'expiresAt',
      ],
      [
        'an expiresAt a second ago',
        { requestsPerMinute: 5, expiresAt: new Date(Date.now() - 1000).toISOString() },
        'expiresAt',
      ],
      [
        'an expiresAt that is no date',
        { requestsPerMinute: 5, expiresAt: 'tomorrow' },
        'expiresAt',
      ],
      ['an unknown field', { requestsPerMinute: 5, burst: 10 }, 'burst'],
      [
        'the identifier in the body',
        { requestsPerMinute: 5, identifier: 'ip:10.0.0.1' },
        'identifier',
      ],
      ['a body that is an array', [{ requestsPerMinute: 5 }], undefined],
    ])(
      'refuses %s with 400: no override is created, and none is changed',
      async (_name, body, field) => {
        const existing = fresh();
        expect((await put(existing, { requestsPerMinute: 77, reason: 'before' })).status).toBe(201);
        const before = await rows();
        const created = fresh();
        for (const identifier of [created, existing]) {
          const reply = await put(identifier, body);
          if (field === undefined) expectProblem(reply, 400, 'VALIDATION_FAILED');
          else expectValidationError(reply, field);
        }
        expect(await rows()).toEqual(before);
        expect(await stored(created)).toBeUndefined();
      },
    );

    it.each([
      ['another kind', 'group:1'],
      ['a kind in capitals', 'IP:203.0.113.1'],
      ['no id after the kind', 'ip:'],
      ['no id, encoded', 'user%3A'],
      ['no kind', ':203.0.113.1'],
      ['no colon', 'user'],
      ['a NUL character', 'ip:203.0.113.1%00'],
      ['a line break', 'user:a%0Ab'],
      ['a tab', 'key:a%09b'],
    ])('refuses an identifier with %s: 400 on identifier, nothing written', async (_name, path) => {
      const before = await rows();
      expectValidationError(await put(path, { requestsPerMinute: 5 }), 'identifier');
      expect(await rows()).toEqual(before);
    });

    // Fastify's default maxParamLength (100) would refuse these before any route: raised to 600.
    it('takes identifiers up to 200 characters and refuses longer ones with 400', async () => {
      const longest = `user:${'a'.repeat(195)}`;
      expect((await put(longest, { requestsPerMinute: 5 })).status).toBe(201);
      expectValidationError(await put(`${longest}b`, { requestsPerMinute: 5 }), 'identifier');
      expect(await stored(`${longest}b`)).toBeUndefined();
    });
  });

  describe('GET and DELETE', () => {
    it('GET one answers a stored override, and 404 for none or a malformed identifier', async () => {
      const identifier = fresh();
      const created = await put(identifier, { requestsPerMinute: 3 });
      expect((await getOne(identifier)).body).toEqual(created.body);
      for (const other of [fresh(), 'ip:192.0.2.200', 'group:1', 'ip:a%00b']) {
        expectProblem(await getOne(other), 404, 'NOT_FOUND');
      }
    });

    it('DELETE answers 204, then the override is gone: GET and DELETE are 404', async () => {
      const identifier = fresh();
      expect((await put(identifier, { requestsPerMinute: 3 })).status).toBe(201);
      const removed = await remove(identifier);
      expect(removed.status).toBe(204);
      expect(removed.raw).toBe('');
      expect(await stored(identifier)).toBeUndefined();
      expectProblem(await getOne(identifier), 404, 'NOT_FOUND');
      expectProblem(await remove(identifier), 404, 'NOT_FOUND');
      const before = await rows();
      expectProblem(await remove('group:1'), 404, 'NOT_FOUND');
      expect(await rows()).toEqual(before);
    });

    describe('the list', () => {
      let expired: string;
      beforeAll(async () => {
        for (let i = 0; i < 3; i += 1) await put(`ip:198.18.0.${i}`, { requestsPerMinute: 5 });
        // Written behind the api's back: a PUT cannot set a past expiry.
        expired = 'ip:198.18.1.1';
        await db.query(
          `INSERT INTO rate_limit_configs (identifier, requests_per_minute, expires_at)
           VALUES ($1, 5, now() - interval '1 hour')`,
          [expired],
        );
      });

      /** Every page, following nextCursor. */
      async function walk(limit: number): Promise<Record<string, unknown>[][]> {
        const pages: Record<string, unknown>[][] = [];
        let cursor: string | null = null;
        do {
          const query: string =
            cursor === null
              ? `?limit=${limit}`
              : `?limit=${limit}&cursor=${encodeURIComponent(cursor)}`;
          const reply: Reply<{ data: Record<string, unknown>[]; nextCursor: string | null }> =
            await list(query);
          expect(reply.status).toBe(200);
          pages.push(reply.body.data);
          cursor = reply.body.nextCursor;
        } while (cursor !== null && pages.length < 1000);
        return pages;
      }

      it.each([2, 3, 100])(
        'pages %s at a time through every override by identifier, expired ones included',
        async (limit) => {
          const pages = await walk(limit);
          const all = await rows();
          expect(all.length).toBeGreaterThan(2 * 3);
          expect(pages.flat().map((item) => item.identifier)).toEqual(
            all.map((row) => row.identifier),
          );
          expect(pages.slice(0, -1).every((page) => page.length === limit)).toBe(true);
          expect(pages[pages.length - 1]?.length).toBeGreaterThan(0);
          for (const item of pages.flat()) expectOverride(item);
          const lapsed = pages.flat().find((item) => item.identifier === expired);
          expect(lapsed).toBeDefined();
          expect(new Date(String(lapsed?.expiresAt)).getTime()).toBeLessThan(Date.now());
        },
      );

      it.each([
        ['a limit of 0', '?limit=0', 'limit'],
        ['a limit over 100', '?limit=101', 'limit'],
        ['an unknown parameter', '?identifier=ip:1.2.3.4', 'identifier'],
      ])('refuses %s: 400', async (_name, query, field) => {
        expectValidationError(await list(query), field);
      });

      it.each([
        ['garbage', 'garbage'],
        ['another order', Buffer.from('{"s":"createdAt","v":"ip:1.2.3.4"}').toString('base64url')],
        [
          'a value no identifier has',
          Buffer.from('{"s":"identifier","v":"x"}').toString('base64url'),
        ],
        ['a number', Buffer.from('{"s":"identifier","v":1}').toString('base64url')],
      ])('refuses a cursor of %s: 400 INVALID_CURSOR', async (_name, cursor) => {
        expectProblem(await list(`?cursor=${cursor}`), 400, 'INVALID_CURSOR');
      });
    });
  });

  describe('the limit in force', () => {
    let second: { run: Running; base: string };
    beforeAll(async () => {
      const port = await freePort();
      const child = runBuilt('api', { ...ENV, PORT: String(port) });
      second = { run: child, base: `http://127.0.0.1:${port}` };
      await waitFor(`${second.base}/health/ready`);
    });
    afterAll(async () => {
      second?.run.child.kill('SIGTERM');
      await second?.run.exited;
    });

    /** A request that counts against `user`'s limit, on the second instance. */
    async function meThere(
      user: TestUser,
    ): Promise<{ status: number; headers: Headers; body: any }> {
      const response = await fetch(`${second.base}/v1/users/me`, {
        headers: { authorization: `Bearer ${user.accessToken}` },
      });
      return { status: response.status, headers: response.headers, body: await response.json() };
    }
    const limitThere = async (user: TestUser) =>
      (await meThere(user)).headers.get('x-ratelimit-limit');

    function expectRateLimited(reply: Reply, limit: string): void {
      expectProblem(reply, 429, 'RATE_LIMITED');
      expect(reply.headers['x-ratelimit-limit']).toBe(limit);
      expect(reply.headers['x-ratelimit-remaining']).toBe('0');
      expect(Number(reply.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }

    it('a lower limit applies on this instance from the next request, and its removal too', async () => {
      const user = await registerUser(app);
      // Without its periodic reload, only the admin route's own reload can make this instance
      // see the change.
      const overrides = app.get(RateLimitOverrides);
      overrides.onApplicationShutdown();
      try {
        const first = await me(user);
        expect(first.status).toBe(200);
        expect(first.headers['x-ratelimit-limit']).toBe(FREE_TIER_LIMIT);

        expect((await put(`user:${user.id}`, { requestsPerMinute: 3 })).status).toBe(201);
        const lowered = [await me(user), await me(user)];
        expect(lowered.map((reply) => reply.status)).toEqual([200, 200]);
        expect(lowered.map((reply) => reply.headers['x-ratelimit-limit'])).toEqual(['3', '3']);
        expect(lowered.map((reply) => reply.headers['x-ratelimit-remaining'])).toEqual(['1', '0']);
        expectRateLimited(await me(user), '3');
        expectRateLimited(await me(user), '3');

        expect((await remove(`user:${user.id}`)).status).toBe(204);
        const restored = await me(user);
        expect(restored.status).toBe(200);
        expect(restored.headers['x-ratelimit-limit']).toBe(FREE_TIER_LIMIT);
      } finally {
        await overrides.onModuleInit();
      }
    });

    it('a PUT or DELETE with an If-Match tag is 412, and the override still applies', async () => {
      const user = await registerUser(app);
      const identifier = `user:${user.id}`;
      expect((await put(identifier, { requestsPerMinute: 50 })).status).toBe(201);
      const tagged = { ...asAdmin(), headers: { 'if-match': '"garbage"' } };
      const url = `${PATH}/${identifier}`;
      const body = { requestsPerMinute: 2 };
      expectProblem(
        await call(app, { method: 'PUT', url, body, ...tagged }),
        412,
        'PRECONDITION_FAILED',
      );
      expectProblem(
        await call(app, { method: 'DELETE', url, ...tagged }),
        412,
        'PRECONDITION_FAILED',
      );
      const limited = await me(user);
      expect(limited.status).toBe(200);
      expect(limited.headers['x-ratelimit-limit']).toBe('50');
    });

    it('reaches a second instance within 1 s of the PUT, and so does its removal', async () => {
      const user = await registerUser(app);
      expect(await limitThere(user)).toBe(FREE_TIER_LIMIT);

      const putAt = Date.now();
      expect((await put(`user:${user.id}`, { requestsPerMinute: 5 })).status).toBe(201);
      const lowered = await eventually(
        () => limitThere(user),
        (limit) => limit === '5',
        3000,
      );
      const loweredIn = Date.now() - putAt;
      expect(lowered).toBe('5');
      expect(loweredIn).toBeLessThan(1000);

      // The polls spent the window: the second instance refuses, and so does this one (one
      // count in Redis for both).
      const refused = await eventually(
        () => meThere(user),
        (reply) => reply.status === 429,
        2000,
      );
      expect(refused.status).toBe(429);
      expect(refused.body.code).toBe('RATE_LIMITED');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(refused.headers.get('x-ratelimit-limit')).toBe('5');
      expectRateLimited(await me(user), '5');

      const deletedAt = Date.now();
      expect((await remove(`user:${user.id}`)).status).toBe(204);
      const restored = await eventually(
        () => meThere(user),
        (reply) => reply.status === 200,
        3000,
      );
      const restoredIn = Date.now() - deletedAt;
      expect(restored.headers.get('x-ratelimit-limit')).toBe(FREE_TIER_LIMIT);
      expect(restoredIn).toBeLessThan(1000);
    });

    it('an expired override stops applying on both instances; it stays listed', async () => {
      const user = await registerUser(app);
      const expiresAt = new Date(Date.now() + 2000).toISOString();
      const identifier = `user:${user.id}`;
      expect((await put(identifier, { requestsPerMinute: 2, expiresAt })).status).toBe(201);
      expect((await me(user)).headers['x-ratelimit-limit']).toBe('2');
      const there = await eventually(
        () => limitThere(user),
        (limit) => limit === '2',
        1500,
      );
      expect(there).toBe('2');
      expect(Date.now()).toBeLessThan(new Date(expiresAt).getTime());

      await sleep(new Date(expiresAt).getTime() - Date.now() + 50);
      const here = await me(user);
      expect(here.status).toBe(200);
      expect(here.headers['x-ratelimit-limit']).toBe(FREE_TIER_LIMIT);
      const afterwards = await meThere(user);
      expect(afterwards.status).toBe(200);
      expect(afterwards.headers.get('x-ratelimit-limit')).toBe(FREE_TIER_LIMIT);
      expect((await getOne(identifier)).body).toMatchObject({ requestsPerMinute: 2, expiresAt });
    });

    // Last in the file: a second app in this process registers its own passport strategies for
    // the whole process.
    it('with rate limiting off, the routes still work; the override applies where it is on', async () => {
      const unlimited = await startApi({ ...ENV, RATE_LIMIT_ENABLED: 'false' });
      try {
        const user = await registerUser(app);
        const identifier = `user:${user.id}`;
        const created = await call(unlimited, {
          method: 'PUT',
          url: `${PATH}/${identifier}`,
          body: { requestsPerMinute: 4 },
          ...asAdmin(),
        });
        expect(created.status).toBe(201);
        expect(created.headers['x-ratelimit-limit']).toBeUndefined();
        const read = await call(unlimited, {
          method: 'GET',
          url: `${PATH}/${identifier}`,
          ...asAdmin(),
        });
        expect(read.body).toEqual(created.body);
        const there = await eventually(
          () => limitThere(user),
          (limit) => limit === '4',
          1500,
        );
        expect(there).toBe('4');

        const removed = await call(unlimited, {
          method: 'DELETE',
          url: `${PATH}/${identifier}`,
          ...asAdmin(),
        });
        expect(removed.status).toBe(204);
        expect(await stored(identifier)).toBeUndefined();
      } finally {
        await unlimited.close();
      }
    });
  });
});
