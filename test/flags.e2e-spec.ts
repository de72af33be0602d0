import { loadConfig } from '@app/config';
import { Breakers, DegradationFlags } from '@app/resilience';
import {
  type TestUser,
  call,
  createTask,
  eventually,
  expectProblem,
  expectValidationError,
  registerUser,
} from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { startApi } from './app';

/**
 * Degradation and feature flags (CONTRACT §8): set through one instance, applied by another within
 * about a second; degraded mode turns search away with 503 and Retry-After; entered on its own
 * while the postgres breaker is not closed. The apps use a Redis prefix of this spec's own: the
 * flags are global to a prefix, and other specs search.
 */
describe('degradation flags across instances', () => {
  const env = { REDIS_KEY_PREFIX: `${loadConfig().redis.keyPrefix}flags-${randomUUID()}:` };
  let one: NestFastifyApplication;
  let two: NestFastifyApplication;
  let admin: TestUser;
  let user: TestUser;

  beforeAll(async () => {
    [one, two] = [await startApi(env), await startApi(env)];
    admin = await registerUser(one);
    await one.get(DataSource).query(`UPDATE users SET role = 'admin' WHERE id = $1`, [admin.id]);
    user = await registerUser(one);
    await createTask(one, user, { title: 'needle in a haystack' });
  });
  afterAll(() => Promise.all([one.close(), two.close()]));

  const flags = (app: NestFastifyApplication, body?: object, as: TestUser = admin) =>
    call(app, {
      method: body ? 'PUT' : 'GET',
      url: '/v1/admin/flags',
      token: as.accessToken,
      body,
    });
  // A new query each time: a cached search is served whatever the flags say (it costs nothing).
  let searches = 0;
  const search = (app: NestFastifyApplication) =>
    call(app, {
      method: 'GET',
      url: `/v1/tasks?q=needle-${(searches += 1)}`,
      token: user.accessToken,
    });

  it('only administrators read or change them; bad bodies are 400 and change nothing', async () => {
    expectProblem(await flags(one, undefined, user), 403, 'FORBIDDEN');
    expectProblem(await flags(one, { degraded: true }, user), 403, 'FORBIDDEN');
    expectValidationError(await flags(one, { degraded: 'yes' }), 'degraded');
    expectValidationError(await flags(one, { features: { search: 1 } }), 'features.search');
    expect((await flags(one, { surprise: true })).status).toBe(400);
    expect((await flags(one, { features: { teleport: true } })).status).toBe(400);
    // null is not false: it would switch degraded mode or a feature off.
    expectValidationError(await flags(one, { degraded: null }), 'degraded');
    expectValidationError(await flags(one, { features: { exports: null } }), 'features.exports');
    expectValidationError(await flags(one, { features: { search: null } }), 'features.search');
    expectValidationError(await flags(one, { features: null }), 'features');
    expect((await flags(one)).body).toEqual({
      degraded: false,
      degradedAutomatically: false,
      features: { search: true, exports: true },
      serving: { search: true, exports: true },
    });
  });

  it('degraded mode set through one instance turns search away on the other; plain reads go on', async () => {
    expect((await search(two)).status).toBe(200);
    const set = await flags(one, { degraded: true });
    expect(set.body).toMatchObject({ degraded: true, serving: { search: false, exports: false } });
    // At once on the instance that took the change.
    expectProblem(await search(one), 503, 'DEGRADED');
    const refused = await eventually(
      () => search(two),
      (reply) => reply.status === 503,
      3000,
    );
    expectProblem(refused, 503, 'DEGRADED');
    expect(refused.headers['retry-after']).toBe('30');
    expect(
      (await call(two, { method: 'GET', url: '/v1/tasks', token: user.accessToken })).status,
    ).toBe(200);

    await flags(one, { degraded: false });
    expect(
      (
        await eventually(
          () => search(two),
          (reply) => reply.status === 200,
          3000,
        )
      ).status,
    ).toBe(200);
  });

  it('a feature flag turns one feature off, and only it', async () => {
    const set = await flags(one, { features: { search: false } });
    expect(set.body).toMatchObject({
      degraded: false,
      features: { search: false, exports: true },
      serving: { search: false, exports: true },
    });
    expectProblem(await search(one), 503, 'DEGRADED');
    await flags(one, { features: { search: true } });
    expect((await search(one)).status).toBe(200);
  });

  it('is entered on its own while the postgres breaker is open', async () => {
    const breakers = two.get(Breakers);
    // Failures through the instance's own breaker, as a failing database would give, until it
    // opens (the window also holds this spec's earlier successes).
    for (let i = 0; i < 500 && breakers.stateOf('postgres') === 'closed'; i += 1) {
      await breakers
        .run('postgres', () => Promise.reject(new Error('connection refused')))
        .catch(() => 0);
    }
    expect(two.get(DegradationFlags).view()).toMatchObject({
      degraded: false,
      degradedAutomatically: true,
      serving: { search: false, exports: false },
    });
    // Turned away as degraded before it could even try the database.
    expectProblem(await search(two), 503, 'DEGRADED');
  });
});
