import {
  call,
  createCategory,
  createTask,
  expectValidationError,
  registerUser,
  type TestUser,
} from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { startApi } from './app';
import { tablesDigest } from './tables';

/**
 * The JSON escapes of what no Postgres text, json or jsonb value takes (issue 15, defect 1): a
 * lone high or low surrogate, at either end or in the middle of a string, and NUL. Each is written
 * into the body as JSON text (JSON.stringify would keep them, but the point is the wire form).
 */
const UNSTORABLE = [
  ['a lone high surrogate', '\\ud800'],
  ['a lone low surrogate', '\\udfff'],
  ['a high surrogate followed by a letter', 'a\\udbffb'],
  ['a low surrogate after a letter', 'a\\udc00'],
  ['two high surrogates', '\\ud83d\\ud83d'],
  ['NUL', 'a\\u0000b'],
] as const;

/**
 * Any string Postgres cannot store is a 400 VALIDATION_FAILED naming the field, on every route
 * that takes a body (before guards, interceptors and the idempotency store see it) and in query
 * strings, and nothing is written; a well-formed pair (an emoji) is stored and echoed unchanged.
 */
describe('strings Postgres cannot store', () => {
  let app: NestFastifyApplication;
  let db: DataSource;
  let user: TestUser;
  let admin: TestUser;
  let taskId: string;
  let categoryId: string;

  beforeAll(async () => {
    app = await startApi({ RATE_LIMIT_ENABLED: 'false' });
    db = app.get(DataSource);
    user = await registerUser(app);
    admin = await registerUser(app);
    await db.query(`UPDATE users SET role = 'admin' WHERE id = $1`, [admin.id]);
    taskId = (await createTask(app, user)).id;
    categoryId = (await createCategory(app, user)).id;
  });
  afterAll(() => app.close());

  /** How many rows each table has, and the rows the PATCH and PUT routes would change. */
  /** Every row of every table, and the flags (in Redis). */
  const state = async () => ({
    rows: await tablesDigest(db),
    flags: (await call(app, { method: 'GET', url: '/v1/admin/flags', token: admin.accessToken }))
      .body,
  });
  /**
   * Each route with a body: its method and path, who calls it, and its body as JSON text with
   * `$` where the string under test goes, and the field the problem must name.
   */
  const routes: [string, () => { url: string; token?: string; body: string; field: string }][] = [
    [
      'POST /v1/auth/register (email)',
      () => ({
        url: '/v1/auth/register',
        body: `{"email":"x$@example.test","password":"a long enough password","name":"N"}`,
        field: 'email',
      }),
    ],
    [
      'POST /v1/auth/register (name)',
      () => ({
        url: '/v1/auth/register',
        body: `{"email":"${randomUUID()}@example.test","password":"a long enough password","name":"$"}`,
        field: 'name',
      }),
    ],
    [
      'POST /v1/auth/login',
      () => ({
        url: '/v1/auth/login',
        body: `{"email":"${user.email}","password":"$"}`,
        field: 'password',
      }),
    ],
    [
      'POST /v1/auth/refresh',
      () => ({ url: '/v1/auth/refresh', body: `{"refreshToken":"$"}`, field: 'refreshToken' }),
    ],
    [
      'POST /v1/tasks',
      () => ({ url: '/v1/tasks', token: user.accessToken, body: `{"title":"$"}`, field: 'title' }),
    ],
    [
      'POST /v1/tasks (a tag)',
      () => ({
        url: '/v1/tasks',
        token: user.accessToken,
        body: `{"title":"ok","tags":["fine","$"]}`,
        field: 'tags.1',
      }),
    ],
    [
      'PATCH /v1/tasks/:id',
      () => ({
        url: `PATCH /v1/tasks/${taskId}`,
        token: user.accessToken,
        body: `{"description":"$"}`,
        field: 'description',
      }),
    ],
    [
      'POST /v1/tasks/exports (filter)',
      () => ({
        url: '/v1/tasks/exports',
        token: user.accessToken,
        body: `{"format":"csv","filter":{"q":"$"}}`,
        field: 'filter.q',
      }),
    ],
    [
      'POST /v1/categories',
      () => ({
        url: '/v1/categories',
        token: user.accessToken,
        body: `{"name":"$"}`,
        field: 'name',
      }),
    ],
    [
      'PATCH /v1/categories/:id',
      () => ({
        url: `PATCH /v1/categories/${categoryId}`,
        token: user.accessToken,
        body: `{"name":"$"}`,
        field: 'name',
      }),
    ],
    [
      'POST /v1/api-keys',
      () => ({
        url: '/v1/api-keys',
        token: user.accessToken,
        body: `{"name":"$","scopes":["tasks:read"]}`,
        field: 'name',
      }),
    ],
    [
      'POST /v1/webhooks',
      () => ({
        url: '/v1/webhooks',
        token: user.accessToken,
        body: `{"url":"https://example.com/$","events":["task.created"]}`,
        field: 'url',
      }),
    ],
    [
      'PUT /v1/admin/rate-limits/:identifier',
      () => ({
        url: `PUT /v1/admin/rate-limits/user:${user.id}`,
        token: admin.accessToken,
        body: `{"requests":10,"windowSeconds":60,"reason":"$"}`,
        field: 'reason',
      }),
    ],
    [
      'PATCH /v1/admin/users/:id',
      () => ({
        url: `PATCH /v1/admin/users/${user.id}`,
        token: admin.accessToken,
        body: `{"tier":"$"}`,
        field: 'tier',
      }),
    ],
    [
      'PUT /v1/admin/flags (a key)',
      () => ({
        url: 'PUT /v1/admin/flags',
        token: admin.accessToken,
        body: `{"features":{"$":true}}`,
        field: 'features.',
      }),
    ],
  ];

  describe.each(UNSTORABLE)('%s', (_, escape) => {
    it.each(routes)(
      '%s is a 400 naming the field, with or without an Idempotency-Key, and writes nothing',
      async (_route, build) => {
        const { url, token, body, field } = build();
        const [method, path] = url.includes(' ') ? url.split(' ') : ['POST', url];
        const before = await state();
        for (const headers of [{}, { 'idempotency-key': randomUUID() }] as Record<
          string,
          string
        >[]) {
          const reply = await call(app, {
            method: method as 'POST' | 'PATCH' | 'PUT',
            url: path,
            token,
            headers,
            body: body.replace('$', escape),
          });
          const problem = expectValidationError(reply);
          const named = problem.errors?.map((error) => error.field) ?? [];
          // A key is named by its path with the key's unstorable characters as U+FFFD.
          if (field.endsWith('.'))
            expect(named[0]).toMatch(new RegExp(`^${field.replace('.', '\\.')}`));
          else expect(named).toEqual([field]);
          expect(JSON.parse(reply.raw)).toEqual(problem);
          // The problem itself is well-formed: nothing unpaired is echoed back.
          expect(reply.raw).not.toMatch(/\\ud[89a-f]/i);
        }
        expect(await state()).toEqual(before);
      },
    );
  });

  it('is a 400 naming the field in a query string too (%00)', async () => {
    const reply = await call(app, {
      method: 'GET',
      url: '/v1/tasks?q=a%00b',
      token: user.accessToken,
    });
    expectValidationError(reply, 'q');
  });

  it('a surrogate pair that makes a real character is stored and echoed unchanged', async () => {
    const created = await call(app, {
      method: 'POST',
      url: '/v1/tasks',
      token: user.accessToken,
      headers: { 'idempotency-key': randomUUID() },
      body: '{"title":"ship it \\ud83d\\ude80","tags":["\\ud83d\\udd25"]}',
    });
    expect(created.status).toBe(201);
    expect(created.body.title).toBe('ship it \u{1F680}');
    const [row] = await db.query('SELECT title, tags FROM tasks WHERE id = $1', [created.body.id]);
    expect(row).toEqual({ title: 'ship it \u{1F680}', tags: ['\u{1F525}'] });
  });
});
