import { loadConfig } from '@app/config';
import { RateLimitOverrides } from '@app/rate-limit';
import { createApiKey, expectProblem, registerUser, type TestUser } from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { LightMyRequestResponse } from 'fastify';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { startApi } from './app';

/**
 * Every /v1 response is counted by the rate limiter and carries its fields, errors included
 * (issue 15, defect 6): requests refused before the guards (malformed JSON, a string Postgres
 * cannot store, 413, 415, an unknown route, 405, OPTIONS) count against the address, as 401s do;
 * a 403 counts against the caller it refused. Once over the limit, they are 429 too.
 */
describe('rate limits on every /v1 response', () => {
  let app: NestFastifyApplication;
  let db: DataSource;
  let user: TestUser;
  let key: Awaited<ReturnType<typeof createApiKey>>;

  beforeAll(async () => {
    app = await startApi({
      RATE_LIMIT_ENABLED: 'true',
      REDIS_KEY_PREFIX: `${loadConfig().redis.keyPrefix}rl-errors-${randomUUID()}:`,
    });
    db = app.get(DataSource);
    user = await registerUser(app);
    key = await createApiKey(app, user, { scopes: ['tasks:read'] });
  });
  afterAll(() => app.close());

  /** Sets `identifier`'s limit and forgets what it was counted (a fresh window per test). */
  async function limit(identifier: string, requestsPerMinute: number) {
    await db.query(
      `INSERT INTO rate_limit_configs (identifier, requests_per_minute) VALUES ($1, $2)
       ON CONFLICT (identifier) DO UPDATE SET requests_per_minute = $2`,
      [identifier, requestsPerMinute],
    );
    await app.get(RateLimitOverrides).reload();
  }

  const post = (url: string, payload: string, headers: Record<string, string> = {}) =>
    app.inject({
      method: 'POST',
      url,
      payload,
      headers: { 'content-type': 'application/json', ...headers },
    });
  const bearer = () => ({ authorization: `Bearer ${user.accessToken}` });

  /** Sends, from `remoteAddress`, with the user's token unless `token` is false. */
  const from = (
    remoteAddress: string,
    method: 'GET' | 'POST' | 'PUT',
    url: string,
    payload?: string,
    { type = 'application/json', token = true } = {},
  ): Promise<LightMyRequestResponse> =>
    app.inject({
      method,
      url,
      payload,
      remoteAddress,
      headers: {
        ...(token ? bearer() : {}),
        ...(payload === undefined ? {} : { 'content-type': type }),
      },
    });

  /** Requests that fail before any guard has run, or at the auth guard without a credential. */
  const refused: [string, number, string, (address: string) => Promise<LightMyRequestResponse>][] =
    [
      ['malformed JSON', 400, 'MALFORMED_JSON', (a) => from(a, 'POST', '/v1/tasks', '{"title":')],
      [
        'an unstorable string',
        400,
        'VALIDATION_FAILED',
        (a) => from(a, 'POST', '/v1/tasks', '{"title":"\\ud800"}'),
      ],
      [
        'a body over 1 MiB',
        413,
        'PAYLOAD_TOO_LARGE',
        (a) => from(a, 'POST', '/v1/tasks', JSON.stringify({ title: 'x'.repeat(1_100_000) })),
      ],
      [
        'a body that is not JSON',
        415,
        'UNSUPPORTED_MEDIA_TYPE',
        (a) => from(a, 'POST', '/v1/tasks', 'title=x', { type: 'text/plain' }),
      ],
      ['an unknown route', 404, 'NOT_FOUND', (a) => from(a, 'GET', '/v1/nowhere')],
      [
        'a method the path does not serve',
        405,
        'METHOD_NOT_ALLOWED',
        (a) => from(a, 'PUT', '/v1/tasks'),
      ],
      [
        'a missing credential',
        401,
        'UNAUTHENTICATED',
        (a) => from(a, 'GET', '/v1/tasks', undefined, { token: false }),
      ],
    ];

  it.each(refused.map(([name, status, code, send], i) => [name, status, code, send, i] as const))(
    '%s is counted against the address, carries the fields, and is 429 once over',
    async (_name, status, code, send, i) => {
      const address = `10.15.6.${i + 1}`;
      await limit(`ip:${address}`, 2);
      const replies = [await send(address), await send(address), await send(address)];
      expect(replies.map((reply) => reply.statusCode)).toEqual([status, status, 429]);
      expect(replies.map((reply) => reply.headers['x-ratelimit-remaining'])).toEqual([
        '1',
        '0',
        '0',
      ]);
      for (const reply of replies) {
        expect(reply.headers['x-ratelimit-limit']).toBe('2');
        expect(reply.headers['ratelimit-policy']).toBe('"default";q=2;w=60');
        expect(reply.headers.ratelimit).toMatch(/^"default";r=\d+;t=\d+$/);
        expect(reply.headers['content-type']).toMatch(/^application\/problem\+json/);
      }
      expect(JSON.parse(replies[0].body).code).toBe(code);
      expect(JSON.parse(replies[2].body).code).toBe('RATE_LIMITED');
      expect(Number(replies[2].headers['retry-after'])).toBeGreaterThan(0);
      // The user's own count was not touched: these counted against the address.
      const mine = await app.inject({ method: 'GET', url: '/v1/users/me', headers: bearer() });
      expect(mine.statusCode).toBe(200);
      expect(mine.headers['x-ratelimit-limit']).toBe('1000');
    },
  );

  it('an OPTIONS is counted too', async () => {
    await limit('ip:10.15.7.1', 1);
    const send = () =>
      app.inject({ method: 'OPTIONS', url: '/v1/tasks', remoteAddress: '10.15.7.1' });
    const first = await send();
    expect(first.statusCode).toBe(204);
    expect(first.headers['x-ratelimit-remaining']).toBe('0');
    expect((await send()).statusCode).toBe(429);
  });

  it('a 403 (an API key without the scope) counts against that key, and carries the fields', async () => {
    await limit(`key:${key.id}`, 2);
    const send = () =>
      app.inject({
        method: 'POST',
        url: '/v1/tasks',
        payload: { title: 'not allowed' },
        headers: { 'x-api-key': key.key },
      });
    const replies = [await send(), await send(), await send()];
    expect(replies.map((reply) => reply.statusCode)).toEqual([403, 403, 429]);
    expect(replies.map((reply) => reply.headers['x-ratelimit-remaining'])).toEqual(['1', '0', '0']);
    expectProblem(
      { status: 403, headers: replies[0].headers, body: JSON.parse(replies[0].body), raw: '' },
      403,
      'INSUFFICIENT_SCOPE',
    );
  });

  it('a request counted by the guards is counted once, not again on its way out', async () => {
    const fresh = await registerUser(app);
    await limit(`user:${fresh.id}`, 5);
    const missing = await app.inject({
      method: 'GET',
      url: `/v1/tasks/${randomUUID()}`,
      headers: { authorization: `Bearer ${fresh.accessToken}` },
    });
    expect(missing.statusCode).toBe(404);
    expect(missing.headers['x-ratelimit-remaining']).toBe('4');
    const bad = await post('/v1/tasks', '{"title":""}', {
      authorization: `Bearer ${fresh.accessToken}`,
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.headers['x-ratelimit-remaining']).toBe('3');
  });

  it('probes and metrics are still never counted', async () => {
    for (const url of ['/health/live', '/health/nowhere', '/metrics']) {
      const reply = await app.inject({ method: url === '/metrics' ? 'DELETE' : 'GET', url });
      expect(reply.headers['x-ratelimit-limit']).toBeUndefined();
    }
  });
});
