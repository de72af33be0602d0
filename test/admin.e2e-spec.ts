import {
  ISO_UTC,
  eventually,
  MALFORMED_IDS,
  UUID,
  call,
  expectProblem,
  expectValidationError,
  registerUser,
} from '@app/testing';
import type { Reply, TestUser } from '@app/testing';
import { Breakers } from '@app/resilience';
import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { startApi } from './app';
import { dropDatabase, ownDatabase } from './databases';

/**
 * Who is an administrator is state of the whole database (LAST_ADMIN, the role filter), so this
 * file runs on a database of its own, which specs running in parallel can neither add admins to
 * nor demote ours in. The api creates and migrates it at first start; afterAll drops it.
 */
const { name: DATABASE, url: DATABASE_URL } = ownDatabase('admin');
const ON_OUR_DATABASE = { DATABASE_URL };

type Credential = { token?: string; headers?: Record<string, string> };
const bearer = (user: TestUser): Credential => ({ token: user.accessToken });
const apiKey = (key: string): Credential => ({ headers: { 'x-api-key': key } });

const USER_FIELDS = {
  id: expect.stringMatching(UUID),
  email: expect.any(String),
  name: expect.any(String),
  role: expect.stringMatching(/^(user|admin)$/),
  tier: expect.stringMatching(/^(free|pro|enterprise)$/),
  createdAt: expect.stringMatching(ISO_UTC),
  updatedAt: expect.stringMatching(ISO_UTC),
};

describe('administration: role admin unlocks /v1/admin/** (CONTRACT §3)', () => {
  let app: NestFastifyApplication;
  let db: DataSource;
  beforeAll(async () => {
    app = await startApi(ON_OUR_DATABASE);
    db = app.get(DataSource);
  });
  afterAll(async () => {
    await app?.close();
    await dropDatabase(DATABASE);
  });

  const listUsers = (query = '', as: Credential = {}) =>
    call(app, { method: 'GET', url: `/v1/admin/users${query}`, ...as });
  const patchUser = (id: string, body: unknown, as: Credential = {}) =>
    call(app, { method: 'PATCH', url: `/v1/admin/users/${id}`, body, ...as });
  const login = (email: string, password: string) =>
    call(app, { method: 'POST', url: '/v1/auth/login', body: { email, password } });
  const whoami = (as: Credential) => call(app, { method: 'GET', url: '/v1/auth/whoami', ...as });

  /** A user made an administrator in the database, as an operator would. */
  async function registerAdmin(): Promise<TestUser> {
    const user = await registerUser(app);
    await db.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [user.id]);
    return user;
  }

  async function stored(id: string): Promise<{ role: string; tier: string; updated_at: Date }> {
    const [row] = await db.query<{ role: string; tier: string; updated_at: Date }[]>(
      'SELECT role, tier, updated_at FROM users WHERE id = $1',
      [id],
    );
    if (!row) throw new Error(`no user ${id}`);
    return row;
  }

  async function createKey(user: TestUser, scopes: string[]): Promise<string> {
    const reply = await call<{ key: string }>(app, {
      method: 'POST',
      url: '/v1/api-keys',
      token: user.accessToken,
      body: { name: `key ${randomUUID()}`, scopes },
    });
    expect(reply.status).toBe(201);
    return reply.body.key;
  }

  /** Every page of a listing, following nextCursor. */
  async function walk(query: string, as: Credential): Promise<{ id: string }[][]> {
    const pages: { id: string }[][] = [];
    let cursor: string | null = null;
    do {
      const reply: Reply<{ data: { id: string }[]; nextCursor: string | null }> = await listUsers(
        cursor === null ? query : `${query}&cursor=${encodeURIComponent(cursor)}`,
        as,
      );
      expect(reply.status).toBe(200);
      pages.push(reply.body.data);
      cursor = reply.body.nextCursor;
    } while (cursor !== null && pages.length < 1000);
    return pages;
  }

  describe('who may call', () => {
    it('without a credential, both routes are 401', async () => {
      const user = await registerUser(app);
      for (const reply of [await listUsers(), await patchUser(user.id, { tier: 'pro' })]) {
        expectProblem(reply, 401, 'UNAUTHENTICATED');
        expect(reply.headers['www-authenticate']).toMatch(/^Bearer\b/);
      }
      expect(await stored(user.id)).toMatchObject({ role: 'user', tier: 'free' });
    });

    it('a user who is not an administrator gets 403 on both routes, and changes nothing', async () => {
      const user = await registerUser(app);
      const before = await stored(user.id);
      expectProblem(await listUsers('', bearer(user)), 403, 'FORBIDDEN');
      expectProblem(
        await patchUser(user.id, { role: 'admin', tier: 'enterprise' }, bearer(user)),
        403,
        'FORBIDDEN',
      );
      expect(await stored(user.id)).toEqual(before);
    });

    it("an admin's API key with the admin scope can use both routes", async () => {
      const admin = await registerAdmin();
      const target = await registerUser(app);
      const key = await createKey(admin, ['admin']);
      const list = await listUsers(`?email=${encodeURIComponent(target.email)}`, apiKey(key));
      expect(list.status).toBe(200);
      expect(list.body.data.map((user: { id: string }) => user.id)).toEqual([target.id]);
      const patched = await patchUser(target.id, { tier: 'pro' }, apiKey(key));
      expect(patched.status).toBe(200);
      expect(patched.body.tier).toBe('pro');
      expect(await stored(target.id)).toMatchObject({ tier: 'pro' });
    });

    it("an admin's API key without the admin scope gets 403 INSUFFICIENT_SCOPE", async () => {
      const admin = await registerAdmin();
      const target = await registerUser(app);
      const key = await createKey(admin, ['tasks:read', 'tasks:write']);
      expectProblem(await listUsers('', apiKey(key)), 403, 'INSUFFICIENT_SCOPE');
      expectProblem(
        await patchUser(target.id, { tier: 'pro' }, apiKey(key)),
        403,
        'INSUFFICIENT_SCOPE',
      );
      expect(await stored(target.id)).toMatchObject({ tier: 'free' });
    });

    it('a demoted admin is refused at once, with their still valid token and their admin key', async () => {
      const [demoted, other] = [await registerAdmin(), await registerAdmin()];
      const key = await createKey(demoted, ['admin']);
      expect((await listUsers('', bearer(demoted))).status).toBe(200);
      expect((await listUsers('', apiKey(key))).status).toBe(200);

      expect((await patchUser(demoted.id, { role: 'user' }, bearer(other))).status).toBe(200);

      expectProblem(await listUsers('', bearer(demoted)), 403, 'FORBIDDEN');
      expectProblem(await patchUser(other.id, { role: 'user' }, bearer(demoted)), 403, 'FORBIDDEN');
      expectProblem(await listUsers('', apiKey(key)), 403, 'FORBIDDEN');
      expect(await stored(other.id)).toMatchObject({ role: 'admin' });
      // The token itself is still good for everything else.
      const me = await call(app, { method: 'GET', url: '/v1/users/me', ...bearer(demoted) });
      expect(me.status).toBe(200);
      expect(me.body.role).toBe('user');
    });
  });

  describe('GET /v1/admin/users', () => {
    let admin: TestUser;
    beforeAll(async () => {
      admin = await registerAdmin();
      for (let i = 0; i < 5; i += 1) await registerUser(app);
    });

    it.each([
      ['newest first by default', '?limit=2', 'DESC'],
      ['oldest first with sort=createdAt', '?limit=2&sort=createdAt', 'ASC'],
      ['newest first with sort=-createdAt', '?limit=3&sort=-createdAt', 'DESC'],
    ])('pages through every user %s, with no duplicate and no gap', async (_name, query, order) => {
      const limit = Number(/limit=(\d+)/.exec(query)?.[1]);
      const pages = await walk(query, bearer(admin));
      const rows: { id: string }[] = await db.query(
        `SELECT id FROM users ORDER BY created_at ${order}, id ${order}`,
      );
      expect(rows.length).toBeGreaterThan(2 * limit);
      expect(pages.flat().map((user) => user.id)).toEqual(rows.map((row) => row.id));
      expect(pages.slice(0, -1).every((page) => page.length === limit)).toBe(true);
      expect(pages[pages.length - 1]?.length).toBeGreaterThan(0);
      for (const user of pages.flat()) expect(user).toEqual(USER_FIELDS);
    });

    it('filters by role, by tier, by both, and by email whatever its case', async () => {
      const [pro, proAdmin] = [await registerUser(app), await registerAdmin()];
      await db.query(`UPDATE users SET tier = 'pro' WHERE id = ANY($1)`, [[pro.id, proAdmin.id]]);
      const ids = async (query: string) =>
        (await walk(`?limit=2&${query}`, bearer(admin))).flat().map((user) => user.id);
      const inDatabase = async (where: string) =>
        (
          await db.query<{ id: string }[]>(
            `SELECT id FROM users WHERE ${where} ORDER BY created_at DESC, id DESC`,
          )
        ).map((row) => row.id);

      const admins = await ids('role=admin');
      expect(admins).toEqual(expect.arrayContaining([admin.id, proAdmin.id]));
      expect(admins).toEqual(await inDatabase(`role = 'admin'`));
      expect(await ids('role=user')).toEqual(await inDatabase(`role = 'user'`));
      expect(await ids('tier=pro')).toEqual(await inDatabase(`tier = 'pro'`));
      expect(await ids('tier=pro')).toEqual(expect.arrayContaining([pro.id, proAdmin.id]));
      expect(await ids('tier=pro&role=admin')).toEqual(
        await inDatabase(`tier = 'pro' AND role = 'admin'`),
      );
      expect(await ids('tier=pro&role=admin')).toContain(proAdmin.id);
      expect(await ids('tier=pro&role=admin')).not.toContain(pro.id);

      const byEmail = await listUsers(
        `?email=${encodeURIComponent(pro.email.toUpperCase())}`,
        bearer(admin),
      );
      expect(byEmail.status).toBe(200);
      expect(byEmail.body).toEqual({
        data: [{ ...USER_FIELDS, id: pro.id, email: pro.email, tier: 'pro' }],
        nextCursor: null,
      });
      const nobody = await listUsers(`?email=nobody-${randomUUID()}@example.test`, bearer(admin));
      expect(nobody.body).toEqual({ data: [], nextCursor: null });
    });

    it.each([
      ['an unknown parameter', '?page=2', 'page'],
      ['an unknown role', '?role=root', 'role'],
      ['an unknown tier', '?tier=gold', 'tier'],
      ['a sort on another field', '?sort=email', 'sort'],
      ['a limit over 100', '?limit=101', 'limit'],
    ])('refuses %s: 400', async (_name, query, field) => {
      expectValidationError(await listUsers(query, bearer(admin)), field);
    });

    it('refuses a malformed cursor, and one of the other sort: 400 INVALID_CURSOR', async () => {
      expectProblem(await listUsers('?cursor=garbage', bearer(admin)), 400, 'INVALID_CURSOR');
      const first = await listUsers('?limit=1&sort=createdAt', bearer(admin));
      expect(first.body.nextCursor).toEqual(expect.any(String));
      const cursor = encodeURIComponent(first.body.nextCursor);
      expectProblem(
        await listUsers(`?sort=-createdAt&cursor=${cursor}`, bearer(admin)),
        400,
        'INVALID_CURSOR',
      );
    });
  });

  describe('PATCH /v1/admin/users/:id', () => {
    it('changes role and tier; the user sees both after signing in again', async () => {
      const admin = await registerAdmin();
      const user = await registerUser(app);
      const before = await stored(user.id);

      const reply = await patchUser(user.id, { role: 'admin', tier: 'enterprise' }, bearer(admin));
      expect(reply.status).toBe(200);
      expect(reply.body).toEqual({
        ...USER_FIELDS,
        id: user.id,
        email: user.email,
        role: 'admin',
        tier: 'enterprise',
      });
      expect(new Date(reply.body.updatedAt).getTime()).toBeGreaterThan(before.updated_at.getTime());

      const again = await login(user.email, user.password);
      expect(again.status).toBe(200);
      const token = { token: again.body.accessToken };
      const me = await call(app, { method: 'GET', url: '/v1/users/me', ...token });
      expect(me.body).toMatchObject({ id: user.id, role: 'admin', tier: 'enterprise' });
      expect((await whoami(token)).body).toMatchObject({ role: 'admin', tier: 'enterprise' });
      // Now an administrator, with the new token.
      expect((await listUsers('', token)).status).toBe(200);

      const tierOnly = await patchUser(user.id, { tier: 'pro' }, bearer(admin));
      expect(tierOnly.body).toMatchObject({ role: 'admin', tier: 'pro' });
      const roleOnly = await patchUser(user.id, { role: 'user' }, bearer(admin));
      expect(roleOnly.body).toMatchObject({ role: 'user', tier: 'pro' });
      expect(await stored(user.id)).toMatchObject({ role: 'user', tier: 'pro' });
    });

    it.each<[string, unknown, string | undefined]>([
      ['an empty body', {}, undefined],
      ['an unknown role', { role: 'root' }, 'role'],
      ['a null role', { role: null }, 'role'],
      ['the tier anonymous', { tier: 'anonymous' }, 'tier'],
      ['an unknown tier', { tier: 'gold' }, 'tier'],
      ['a null tier', { tier: null }, 'tier'],
      ['an unknown field', { tier: 'pro', email: 'someone@example.test' }, 'email'],
      ['a field no admin may set this way', { name: 'Mallory' }, 'name'],
    ])('refuses %s with 400 and changes nothing', async (_name, body, field) => {
      const admin = await registerAdmin();
      const user = await registerUser(app);
      const before = await stored(user.id);
      const reply = await patchUser(user.id, body, bearer(admin));
      if (field === undefined) expectProblem(reply, 400, 'VALIDATION_FAILED');
      else expectValidationError(reply, field);
      expect(await stored(user.id)).toEqual(before);
    });

    it.each([randomUUID(), ...MALFORMED_IDS])('is 404 for the id %s', async (id) => {
      const admin = await registerAdmin();
      expectProblem(await patchUser(id, { tier: 'pro' }, bearer(admin)), 404, 'NOT_FOUND');
    });
  });

  describe('the last administrator', () => {
    it('cannot be demoted: 409 LAST_ADMIN, and nothing changes', async () => {
      const last = await registerAdmin();
      await db.query(`UPDATE users SET role = 'user' WHERE role = 'admin' AND id <> $1`, [last.id]);
      const before = await stored(last.id);

      const reply = await patchUser(last.id, { role: 'user', tier: 'pro' }, bearer(last));
      expectProblem(reply, 409, 'LAST_ADMIN');
      expect(await stored(last.id)).toEqual(before);
      // Other changes to the last admin are fine.
      expect((await patchUser(last.id, { tier: 'pro' }, bearer(last))).status).toBe(200);

      // With a second administrator, the first may step down.
      const second = await registerAdmin();
      expect((await patchUser(last.id, { role: 'user' }, bearer(second))).status).toBe(200);
      expectProblem(
        await patchUser(second.id, { role: 'user' }, bearer(second)),
        409,
        'LAST_ADMIN',
      );
    });

    it('two admins demoting each other at once: exactly one succeeds, one admin is left', async () => {
      await db.query(`UPDATE users SET role = 'user' WHERE role = 'admin'`);
      const [a, b] = [await registerAdmin(), await registerAdmin()];

      // Hold the admin rows, so both requests are past the guard and waiting when they go on:
      // a real race, every time.
      const runner = db.createQueryRunner();
      await runner.connect();
      let replies: Reply[];
      try {
        await runner.startTransaction();
        await runner.query(`SELECT id FROM users WHERE role = 'admin' FOR UPDATE`);
        const both = Promise.all([
          patchUser(b.id, { role: 'user' }, bearer(a)),
          patchUser(a.id, { role: 'user' }, bearer(b)),
        ]);
        const waiting = await eventually(
          // Not through `runner`: inside a transaction, pg_stat_activity is a snapshot.
          async () =>
            (
              await db.query<{ n: number }[]>(
                `SELECT count(*)::int AS n FROM pg_stat_activity
                  WHERE datname = current_database() AND wait_event_type = 'Lock'`,
              )
            )[0]?.n ?? 0,
          (n) => n >= 2,
          5000,
        );
        expect(waiting).toBe(2);
        await runner.commitTransaction();
        replies = await both;
      } finally {
        if (runner.isTransactionActive) await runner.rollbackTransaction();
        await runner.release();
      }

      expect(replies.map((reply) => reply.status).sort()).toEqual([200, 409]);
      expectProblem(replies.find((reply) => reply.status === 409) as Reply, 409, 'LAST_ADMIN');
      const admins = await db.query(`SELECT id FROM users WHERE role = 'admin' AND id = ANY($1)`, [
        [a.id, b.id],
      ]);
      expect(admins).toHaveLength(1);
      expect(await db.query(`SELECT id FROM users WHERE role = 'admin'`)).toEqual(admins);
    });
  });

  describe("a user's API keys follow a change of role or tier", () => {
    it('whoami with the key reports the new tier and role within a second', async () => {
      const admin = await registerAdmin();
      const user = await registerUser(app);
      const key = await createKey(user, ['tasks:read']);
      // Verified, so cached: only an invalidation makes it read the user again.
      expect((await whoami(apiKey(key))).body).toMatchObject({ tier: 'free', role: 'user' });

      expect((await patchUser(user.id, { tier: 'enterprise' }, bearer(admin))).status).toBe(200);
      const tier = await eventually(
        () => whoami(apiKey(key)),
        (reply) => reply.body.tier === 'enterprise',
        1000,
      );
      expect(tier.body).toMatchObject({ credential: 'apiKey', tier: 'enterprise', role: 'user' });

      expect((await patchUser(user.id, { role: 'admin' }, bearer(admin))).status).toBe(200);
      const role = await eventually(
        () => whoami(apiKey(key)),
        (reply) => reply.body.role === 'admin',
        1000,
      );
      expect(role.body).toMatchObject({ tier: 'enterprise', role: 'admin' });
    });
  });

  describe('GET /v1/admin/breakers', () => {
    it("lists this instance's breakers; only for administrators", async () => {
      const admin = await registerAdmin();
      expectProblem(
        await call(app, { method: 'GET', url: '/v1/admin/breakers' }),
        401,
        'UNAUTHENTICATED',
      );
      const user = await registerUser(app);
      expectProblem(
        await call(app, { method: 'GET', url: '/v1/admin/breakers', ...bearer(user) }),
        403,
        'FORBIDDEN',
      );
      const reply = await call(app, { method: 'GET', url: '/v1/admin/breakers', ...bearer(admin) });
      expect(reply.status).toBe(200);
      expect(reply.body.data.map((b: { name: string }) => b.name)).toEqual(
        expect.arrayContaining(['postgres', 'redis', 'rabbitmq']),
      );
      expect(reply.body.data[0]).toEqual({
        name: 'postgres',
        state: expect.stringMatching(/^(closed|half-open|open)$/),
        timeoutMs: expect.any(Number),
        window: {
          calls: expect.any(Number),
          successes: expect.any(Number),
          failures: expect.any(Number),
          timeouts: expect.any(Number),
          rejects: expect.any(Number),
        },
      });
    });

    it('an open breaker shows in the list, in the metrics and in the readiness body', async () => {
      const admin = await registerAdmin();
      const breakers = app.get(Breakers);
      // The rabbitmq breaker: nothing in this spec publishes, so opening it harms nothing else.
      for (let i = 0; i < 10; i += 1) {
        await breakers.run('rabbitmq', () => Promise.reject(new Error('refused'))).catch(() => 0);
      }
      const list = await call(app, { method: 'GET', url: '/v1/admin/breakers', ...bearer(admin) });
      expect(list.body.data).toContainEqual(
        expect.objectContaining({ name: 'rabbitmq', state: 'open' }),
      );
      const metrics = await call(app, { method: 'GET', url: '/metrics' });
      expect(metrics.raw).toContain(`circuit_breaker_state{breaker="rabbitmq"} 2`);
      expect(metrics.raw).toContain(
        `circuit_breaker_events_total{breaker="rabbitmq",event="open"} 1`,
      );
      const ready = await call(app, { method: 'GET', url: '/health/ready' });
      // Reported, not judged: the instance still serves.
      expect(ready.status).toBe(200);
      expect(ready.body.degraded.breakers).toMatchObject({
        status: 'down',
        postgres: 'closed',
        rabbitmq: 'open',
      });
    });
  });

  describe('npm run admin:create', () => {
    const ROOT = join(__dirname, '..');
    /** The script as `npm run admin:create -- ...args` runs it, on this file's database. */
    function adminCreate(args: string[], password: string | undefined, input?: string) {
      const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL };
      delete env.ADMIN_EMAIL;
      delete env.ADMIN_PASSWORD;
      if (password !== undefined) env.ADMIN_PASSWORD = password;
      const run = spawnSync(
        'npx',
        ['ts-node', '--swc', '-r', 'tsconfig-paths/register', 'scripts/admin-create.ts', ...args],
        { cwd: ROOT, env, input, encoding: 'utf8', timeout: 60_000 },
      );
      // npm's own notices on stderr are not the script's.
      const stderr = run.stderr
        .split('\n')
        .filter((line) => line !== '' && !/^npm (warn|notice)/i.test(line));
      return { status: run.status, stdout: run.stdout, stderr, all: run.stdout + run.stderr };
    }

    it('creates an administrator who can sign in; the password is never printed', async () => {
      const email = `Ops.${randomUUID()}@Example.test`;
      const password = `pw ${randomUUID()}`;
      const run = adminCreate(['--email', email], password);
      expect(run.stderr).toEqual([]);
      expect(run.status).toBe(0);
      expect(run.stdout).toContain(`Created administrator ${email.toLowerCase()}.\n`);
      expect(run.all).not.toContain(password);

      const signedIn = await login(email, password);
      expect(signedIn.status).toBe(200);
      expect(signedIn.body.user).toMatchObject({ role: 'admin', name: 'Administrator' });
      expect((await listUsers('', { token: signedIn.body.accessToken })).status).toBe(200);
    });

    it('promotes an existing user and leaves their password as it was', async () => {
      const user = await registerUser(app);
      const other = `another password ${randomUUID()}`;
      const run = adminCreate([`--email=${user.email.toUpperCase()}`], other);
      expect(run.status).toBe(0);
      expect(run.stdout).toContain(`${user.email} is now an administrator (password unchanged).\n`);
      expect(run.all).not.toContain(other);
      expect(await stored(user.id)).toMatchObject({ role: 'admin' });
      expect((await login(user.email, user.password)).status).toBe(200);
      expectProblem(await login(user.email, other), 401, 'INVALID_CREDENTIALS');
    });

    it('reads the password from the first line of stdin without ADMIN_PASSWORD', async () => {
      const email = `stdin.${randomUUID()}@example.test`;
      const password = `from stdin ${randomUUID()}`;
      const run = adminCreate(['--email', email], undefined, `${password}\nnot this line\n`);
      expect(run.status).toBe(0);
      expect(run.stdout).toContain(`Created administrator ${email}.`);
      expect(run.all).not.toContain(password);
      expect((await login(email, password)).status).toBe(200);
    });

    it.each<[string, string[], string | undefined, RegExp]>([
      ['no --email', [], 'a long enough password', /usage/],
      ['an unexpected argument', ['--email', 'x@example.test', 'extra'], 'long enough pw', /usage/],
      ['a password under 10 characters', ['--email', 'EMAIL'], 'short pw', /10/],
      ['no password at all', ['--email', 'EMAIL'], undefined, /password/i],
      ['an invalid email', ['--email', 'not-an-email'], 'a long enough password', /ADMIN_EMAIL/],
    ])(
      'exits 2 for %s, with one line on stderr, and changes nothing',
      async (_name, args, password, says) => {
        const email = `refused.${randomUUID()}@example.test`;
        const run = adminCreate(
          args.map((arg) => (arg === 'EMAIL' ? email : arg)),
          password,
          '',
        );
        expect(run.status).toBe(2);
        expect(run.stderr).toHaveLength(1);
        expect(run.stderr[0]).toMatch(says);
        if (password !== undefined) expect(run.all).not.toContain(password);
        expect(await db.query('SELECT id FROM users WHERE email = $1', [email])).toEqual([]);
      },
    );
  });

  // Last: each start registers its own passport strategies for the whole process, which the
  // tests above (API keys) rely on being the first app's.
  describe('ADMIN_EMAIL / ADMIN_PASSWORD at start', () => {
    let logged: jest.SpyInstance;
    beforeEach(() => {
      logged = jest.spyOn(Logger.prototype, 'log');
    });
    afterEach(() => logged.mockRestore());

    /** Starts the api with these, runs `use` against it, and closes it. */
    async function withApp(
      admin: { email: string; password: string },
      use: (started: NestFastifyApplication) => Promise<void>,
    ): Promise<void> {
      const started = await startApi({
        ...ON_OUR_DATABASE,
        ADMIN_EMAIL: admin.email,
        ADMIN_PASSWORD: admin.password,
      });
      try {
        await use(started);
      } finally {
        await started.close();
      }
    }
    const loginTo = (started: NestFastifyApplication, email: string, password: string) =>
      call(started, { method: 'POST', url: '/v1/auth/login', body: { email, password } });
    const lines = () => logged.mock.calls.map((args: unknown[]) => args.map(String).join(' '));

    it('creates the administrator; a later start with another password leaves it', async () => {
      const email = `Root.${randomUUID()}@Example.test`;
      const first = `first password ${randomUUID()}`;
      const second = `second password ${randomUUID()}`;

      await withApp({ email, password: first }, async (started) => {
        const signedIn = await loginTo(started, email, first);
        expect(signedIn.status).toBe(200);
        expect(signedIn.body.user).toMatchObject({
          email: email.toLowerCase(),
          name: 'Administrator',
          role: 'admin',
        });
        const list = await call(started, {
          method: 'GET',
          url: '/v1/admin/users',
          token: signedIn.body.accessToken,
        });
        expect(list.status).toBe(200);
      });
      const created = lines().filter((line) => line.includes(email.toLowerCase()));
      expect(created).toHaveLength(1);
      expect(created[0]).toMatch(/Created/);
      logged.mockClear();

      await withApp({ email, password: second }, async (started) => {
        expect((await loginTo(started, email, first)).status).toBe(200);
        expectProblem(await loginTo(started, email, second), 401, 'INVALID_CREDENTIALS');
      });
      const existed = lines().filter((line) => line.includes(email.toLowerCase()));
      expect(existed).toHaveLength(1);
      expect(existed[0]).toMatch(/already existed/);
      expect(existed[0]).not.toMatch(/Created/);

      const rows = await db.query('SELECT role FROM users WHERE email = $1', [email.toLowerCase()]);
      expect(rows).toEqual([{ role: 'admin' }]);
      for (const line of lines()) {
        expect(line).not.toContain(first);
        expect(line).not.toContain(second);
      }
    });

    it('promotes an existing user at start, who keeps their password', async () => {
      const user = await registerUser(app);
      const password = `admin password ${randomUUID()}`;
      await withApp({ email: user.email, password }, async (started) => {
        const signedIn = await loginTo(started, user.email, user.password);
        expect(signedIn.status).toBe(200);
        expect(signedIn.body.user).toMatchObject({ id: user.id, role: 'admin', name: 'Test User' });
        expectProblem(await loginTo(started, user.email, password), 401, 'INVALID_CREDENTIALS');
      });
    });

    it('two instances starting at once make one administrator', async () => {
      const email = `twins.${randomUUID()}@example.test`;
      const password = `twin password ${randomUUID()}`;
      const env = { ...ON_OUR_DATABASE, ADMIN_EMAIL: email, ADMIN_PASSWORD: password };
      const starts = await Promise.allSettled([startApi(env), startApi(env)]);
      await Promise.all(
        starts.flatMap((start) => (start.status === 'fulfilled' ? [start.value.close()] : [])),
      );
      expect(starts.map((start) => start.status)).toEqual(['fulfilled', 'fulfilled']);
      expect(await db.query('SELECT role FROM users WHERE email = $1', [email])).toEqual([
        { role: 'admin' },
      ]);
      expect(lines().filter((line) => /Created/.test(line) && line.includes(email))).toHaveLength(
        1,
      );
    });
  });
});
