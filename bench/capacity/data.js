// @ts-check
'use strict';

/** The data `npm run bench:capacity` works on: one user, an API key, their rate-limit overrides
 * and the seeded tasks. */
const { withPg } = require('../lib');
const { BenchError, request, sleep } = require('../processes');
const { log } = require('./processes');
const { bearer, json } = require('./requests');
const { DATABASE_URL, OVERRIDE_PER_MINUTE, PASSWORD } = require('./settings');

/**
 * One user (registered through the api), an API key, the overrides that admit the load, and
 * enough tasks by SQL for every distinct-id run; ctx.take(n) hands out ids never handed before.
 */
async function seed(s, tasks) {
  log(`seeding: one user, an API key, ${tasks} tasks...`);
  const email = `capacity-${Date.now()}@example.com`;
  const registered = await request(`${s.apiUrl}/v1/auth/register`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ email, password: PASSWORD, name: 'Capacity' }),
  });
  if (registered.status !== 201) throw new BenchError(`register: ${registered.text}`);
  const { accessToken: token, user } = JSON.parse(registered.text);
  const created = await request(`${s.apiUrl}/v1/api-keys`, {
    method: 'POST',
    headers: { ...json, authorization: `Bearer ${token}` },
    body: JSON.stringify({ name: 'capacity', scopes: ['tasks:read', 'tasks:write'] }),
  });
  if (created.status !== 201) throw new BenchError(`api key: ${created.text}`);
  const key = JSON.parse(created.text);
  const ids = await withPg(DATABASE_URL, async (pg) => {
    for (const identifier of [`user:${user.id}`, `key:${key.id}`, 'ip:127.0.0.1']) {
      await pg.query(
        `INSERT INTO rate_limit_configs (identifier, requests_per_minute, reason)
         VALUES ($1, $2, 'npm run bench:capacity')`,
        [identifier, OVERRIDE_PER_MINUTE],
      );
    }
    await pg.query(
      `INSERT INTO tasks (user_id, title, description, status, priority, due_date, tags,
                          created_at, updated_at)
       SELECT $1, 'Seeded task ' || n,
              CASE WHEN n % 3 = 0 THEN NULL ELSE repeat('Notes on it. ', 1 + n % 10) END,
              (enum_range(NULL::task_status))[1 + n % 3],
              (enum_range(NULL::task_priority))[1 + n % 4],
              CASE WHEN n % 5 = 0 THEN NULL ELSE now() + (n % 60 - 20) * interval '1 day' END,
              ARRAY['capacity', 'tag-' || n % 8],
              now() - n * interval '30 seconds', now() - n * interval '30 seconds'
         FROM generate_series(1, $2::int) AS n`,
      [user.id, tasks],
    );
    await pg.query('ANALYZE tasks');
    const { rows } = await pg.query('SELECT id FROM tasks WHERE user_id = $1 ORDER BY id', [
      user.id,
    ]);
    return rows.map((row) => row.id);
  });
  /** @type {import('./requests').SeedContext} */
  const ctx = {
    email,
    token,
    userId: user.id,
    apiKey: key.key,
    hotId: ids.pop(),
    take: (n) => {
      if (ids.length < n) throw new BenchError('not enough seeded tasks');
      return ids.splice(0, n);
    },
  };
  // Overrides are read every 500 ms by each instance: wait until all three apply.
  const applied = async (url, options) =>
    (await request(url, options)).headers
      .get('ratelimit-policy')
      ?.includes(`q=${OVERRIDE_PER_MINUTE};`);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok =
      (await applied(`${s.apiUrl}/v1/auth/whoami`, { headers: bearer(ctx) })) &&
      (await applied(`${s.apiUrl}/v1/auth/whoami`, { headers: { 'x-api-key': ctx.apiKey } })) &&
      (await applied(`${s.apiUrl}/v1/auth/login`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({ email, password: PASSWORD }),
      }));
    if (ok) return ctx;
    if (Date.now() > deadline) throw new BenchError('the rate-limit overrides never applied');
    await sleep(200);
  }
}

module.exports = { seed };
