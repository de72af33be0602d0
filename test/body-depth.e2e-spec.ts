import { call, expectProblem, registerUser, type TestUser } from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { startApi } from './app';

/** `levels` nested arrays, or objects `{"a":…}`, around `inner`, as JSON text. */
function nested(kind: 'array' | 'object', levels: number, inner = '1'): string {
  return kind === 'array'
    ? '['.repeat(levels) + inner + ']'.repeat(levels)
    : '{"a":'.repeat(levels) + inner + '}'.repeat(levels);
}

/** A JSON object with `fields`, and a `deep` field holding `deep` (JSON text) as its value. */
function withDeep(fields: Record<string, unknown>, deep: string): string {
  return `${JSON.stringify(fields).slice(0, -1)},"deep":${deep}}`;
}

/**
 * No body is walked without a bound (issue 13, item 2): JSON nested deeper than 32 levels is
 * refused by the body parser with a 400 problem before anything parses or walks it, on the
 * routes that take no credential as on the others, and nothing is created.
 */
describe('deeply nested JSON bodies', () => {
  let app: NestFastifyApplication;
  let db: DataSource;
  let user: TestUser;
  beforeAll(async () => {
    app = await startApi({ RATE_LIMIT_ENABLED: 'false' });
    db = app.get(DataSource);
    user = await registerUser(app);
  });
  afterAll(() => app.close());

  const post = (url: string, raw: string, token?: string) =>
    call(app, { method: 'POST', url, body: raw, token });

  describe.each(['array', 'object'] as const)('100 000 levels of %s', (kind) => {
    const deep = nested(kind, 100_000);

    it('is a 400 problem on register, and no user is created', async () => {
      const email = `deep-${randomUUID()}@example.test`;
      const reply = await post(
        '/v1/auth/register',
        withDeep({ email, password: 'a long enough password', name: 'Deep' }, deep),
      );
      expect(expectProblem(reply, 400, 'VALIDATION_FAILED').detail).toMatch(/deeper than 32/);
      expect(await db.query('SELECT 1 FROM users WHERE email = $1', [email])).toEqual([]);
    });

    it('is a 400 problem on login and refresh', async () => {
      const login = await post(
        '/v1/auth/login',
        withDeep({ email: user.email, password: user.password }, deep),
      );
      expectProblem(login, 400, 'VALIDATION_FAILED');
      const refresh = await post(
        '/v1/auth/refresh',
        withDeep({ refreshToken: user.refreshToken }, deep),
      );
      expectProblem(refresh, 400, 'VALIDATION_FAILED');
      // The refresh token was not spent by the refused request.
      const rotated = await post(
        '/v1/auth/refresh',
        JSON.stringify({ refreshToken: user.refreshToken }),
      );
      expect(rotated.status).toBe(200);
      user.refreshToken = rotated.body.refreshToken;
    });

    it('is a 400 problem on an authenticated write, and no task is created', async () => {
      const title = `deep-${randomUUID()}`;
      const reply = await post('/v1/tasks', withDeep({ title }, deep), user.accessToken);
      expectProblem(reply, 400, 'VALIDATION_FAILED');
      expect(await db.query('SELECT 1 FROM tasks WHERE title = $1', [title])).toEqual([]);
    });

    it('is a 400 problem as a whole body, too', async () => {
      const reply = await post('/v1/auth/login', deep);
      expect(expectProblem(reply, 400, 'VALIDATION_FAILED').detail).toMatch(/deeper than 32/);
    });
  });

  it('refuses a 1 MiB body of [ (just under the size limit) as too deep, not too large', async () => {
    const reply = await post('/v1/auth/login', '['.repeat(1024 * 1024 - 1));
    expect(expectProblem(reply, 400, 'VALIDATION_FAILED').detail).toMatch(/deeper than 32/);
  });

  it('validates a body of exactly 32 levels as usual, and refuses 33', async () => {
    // The body object is level 1: 31 arrays in `title` make 32.
    const at = await post('/v1/tasks', `{"title":${nested('array', 31, '"x"')}}`, user.accessToken);
    const problem = expectProblem(at, 400, 'VALIDATION_FAILED');
    expect(problem.errors?.[0]?.field).toBe('title');
    const over = await post(
      '/v1/tasks',
      `{"title":${nested('array', 32, '"x"')}}`,
      user.accessToken,
    );
    expect(expectProblem(over, 400, 'VALIDATION_FAILED').detail).toMatch(/deeper than 32/);
    // Brackets inside strings are text, not nesting.
    const text = '['.repeat(100);
    const created = await post('/v1/tasks', JSON.stringify({ title: text }), user.accessToken);
    expect(created.status).toBe(201);
    expect(created.body.title).toBe(text);
  });
});
