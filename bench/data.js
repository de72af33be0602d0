// @ts-check
'use strict';

/** The data `npm run bench` works on: its databases, the seeded user, tasks and webhooks, and the
 * reset between rounds. */
const fs = require('node:fs');
const path = require('node:path');
const { withPg } = require('./lib');
const { BenchError, log, loud, request, sleep } = require('./processes');
const { duration } = require('./report');
const {
  API_ENV,
  DATABASE,
  DATABASE_URL,
  DRAIN_TIMEOUT_MS,
  OVERRIDE_PER_MINUTE,
  PG_ADMIN_URL,
  RUN_DIR,
  SEED_TASKS,
  TARGETS,
  WEBHOOKS_DATABASE_URL,
} = require('./settings');

async function dropDatabase(name = DATABASE) {
  await withPg(PG_ADMIN_URL, (pg) =>
    pg.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`),
  );
}

async function createDatabase() {
  log(`creating a fresh database ${DATABASE}...`);
  await dropDatabase();
  await withPg(PG_ADMIN_URL, (pg) => pg.query(`CREATE DATABASE ${pg.escapeIdentifier(DATABASE)}`));
}

/** Registers a user through `apiUrl` and lifts their rate limit; returns the access token and id. */
async function registerBenchUser(apiUrl, databaseUrl, label) {
  const registered = await request(`${apiUrl}/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      email: `bench-${label}-${Date.now()}@example.com`,
      password: 'benchmark-password',
      name: 'Bench User',
    }),
  });
  if (registered.status !== 201) {
    throw new BenchError(
      `POST /v1/auth/register answered ${registered.status}: ${registered.text}`,
    );
  }
  const { accessToken: token, user } = JSON.parse(registered.text);
  if (!token || !user?.id) throw new BenchError(`unexpected register answer: ${registered.text}`);
  await withPg(databaseUrl, (pg) =>
    pg.query(
      `INSERT INTO rate_limit_configs (identifier, requests_per_minute, reason)
       VALUES ($1, $2, 'npm run bench')`,
      [`user:${user.id}`, OVERRIDE_PER_MINUTE],
    ),
  );
  return { token, userId: user.id };
}

/** Two users of the webhooks target: one without webhooks, one subscribed to task.created. */
async function seedWebhooks(apiUrl, receiverUrl) {
  log('seeding the webhooks target: a user without webhooks, and one with a subscriber...');
  const plain = await registerBenchUser(apiUrl, WEBHOOKS_DATABASE_URL, 'plain');
  const subscribed = await registerBenchUser(apiUrl, WEBHOOKS_DATABASE_URL, 'subscribed');
  const hook = await request(`${apiUrl}/v1/webhooks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${subscribed.token}` },
    body: JSON.stringify({ url: `${receiverUrl}/hooks`, events: ['task.created'] }),
  });
  if (hook.status !== 201) {
    throw new BenchError(`POST /v1/webhooks answered ${hook.status}: ${hook.text}`);
  }
  return { plainToken: plain.token, subscribedToken: subscribed.token, receiverUrl };
}

/**
 * Before each scenario of the webhooks target: waits for its worker to have relayed every event
 * and settled every delivery of the scenario before (so no backlog is worked off during the next
 * measurement), then deletes what the writes made and vacuums, so each starts alike.
 */
async function settleWorker(ctx) {
  const started = Date.now();
  const backlog = await withPg(WEBHOOKS_DATABASE_URL, async (pg) => {
    for (;;) {
      const { rows } = await pg.query(
        `SELECT (SELECT count(*)::int FROM outbox WHERE published_at IS NULL) AS outbox,
                (SELECT count(*)::int FROM webhook_deliveries WHERE status = 'pending') AS deliveries`,
      );
      const [left] = rows;
      if ((left.outbox === 0 && left.deliveries === 0) || Date.now() - started > DRAIN_TIMEOUT_MS) {
        await pg.query('DELETE FROM webhook_deliveries');
        await pg.query('DELETE FROM tasks');
        await pg.query('DELETE FROM outbox WHERE published_at IS NOT NULL');
        await pg.query('VACUUM ANALYZE tasks, webhook_deliveries, outbox');
        return left;
      }
      await sleep(500);
    }
  });
  const received = JSON.parse((await request(`${ctx.webhooks.receiverUrl}/count`)).text).received;
  const waited = duration(Date.now() - started);
  if (backlog.outbox + backlog.deliveries > 0) {
    loud([
      `the webhooks worker did not catch up within ${duration(DRAIN_TIMEOUT_MS)}:`,
      `${backlog.outbox} events and ${backlog.deliveries} deliveries left (deleted)`,
    ]);
  } else {
    log(`webhooks worker caught up in ${waited}; the receiver has had ${received} deliveries`);
  }
}

/**
 * Deletes every queue the apps declare with the environment `env` (its RabbitMQ URL, queue prefix
 * and job settings), as libs/messaging names them (through ts-node).
 * @param {Record<string, string | undefined>} env
 */
async function deleteQueues(env) {
  require('ts-node').register({ transpileOnly: true, compilerOptions: { module: 'commonjs' } });
  const { loadConfig } = require('../libs/config/src/config');
  const { declaredQueueNames } = require('../libs/messaging/src/topology');
  const config = loadConfig(env);
  const amqp = require('amqplib');
  const connection = await amqp.connect(config.rabbitmq.url);
  try {
    const channel = await connection.createChannel();
    for (const name of declaredQueueNames(config)) await channel.deleteQueue(name);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** Deletes the queues the webhooks target's worker declared. */
const deleteWebhooksQueues = () => deleteQueues({ ...API_ENV, ...TARGETS['api-webhooks'].env });

/**
 * One user through the api, with an API key, and 1 000 varied tasks by SQL; returns the user, the
 * access token, the key and a task id.
 */
async function seed(apiUrl) {
  log(`seeding: one user, ${SEED_TASKS} tasks...`);
  const seededIdsFile = path.join(RUN_DIR, 'seeded-ids.txt');
  const { token, userId } = await registerBenchUser(apiUrl, DATABASE_URL, 'main');
  const created = await request(`${apiUrl}/v1/api-keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ name: 'bench', scopes: ['tasks:read', 'tasks:write'] }),
  });
  if (created.status !== 201) {
    throw new BenchError(`POST /v1/api-keys answered ${created.status}: ${created.text}`);
  }
  const { key: apiKey, id: apiKeyId } = JSON.parse(created.text);

  const taskId = await withPg(DATABASE_URL, async (pg) => {
    await pg.query(
      `INSERT INTO tasks (user_id, title, description, status, priority, due_date, tags,
                          created_at, updated_at)
       SELECT $1,
              'Task ' || i || ': ' || (ARRAY['write report', 'call supplier', 'review PR',
                'plan sprint', 'fix invoice', 'book travel'])[1 + i % 6],
              CASE WHEN i % 4 = 0 THEN NULL
                   ELSE 'Details for task ' || i || '. ' || repeat('Some words here. ', 1 + i % 9)
              END,
              (ARRAY['todo', 'in_progress', 'done'])[1 + i % 3]::task_status,
              (ARRAY['low', 'medium', 'high', 'urgent'])[1 + (i / 3) % 4]::task_priority,
              CASE WHEN i % 5 = 0 THEN NULL
                   ELSE date_trunc('hour', now()) + ((i % 90) - 30) * interval '1 day'
              END,
              CASE i % 7
                WHEN 0 THEN '{}'::text[]
                WHEN 1 THEN ARRAY['work']
                WHEN 2 THEN ARRAY['home', 'errand']
                WHEN 3 THEN ARRAY['finance', 'q3']
                WHEN 4 THEN ARRAY['work', 'urgent', 'client']
                WHEN 5 THEN ARRAY['health']
                ELSE ARRAY['reading', 'later']
              END,
              now() - i * interval '1 minute',
              now() - i * interval '1 minute'
       FROM generate_series(1, $2::int) AS i`,
      [userId, SEED_TASKS],
    );
    await pg.query('ANALYZE tasks');
    // The load is one client far over any tier's limit: an administrator's override lifts it, so
    // every request still takes its rate-limit decision, and is admitted.
    await pg.query(
      `INSERT INTO rate_limit_configs (identifier, requests_per_minute, reason)
       VALUES ($1, $2, 'npm run bench')`,
      [`key:${apiKeyId}`, OVERRIDE_PER_MINUTE],
    );
    const picked = await pg.query(
      'SELECT id FROM tasks WHERE user_id = $1 ORDER BY created_at DESC, id OFFSET $2 LIMIT 1',
      [userId, Math.floor(SEED_TASKS / 2)],
    );
    const all = await pg.query('SELECT id FROM tasks WHERE user_id = $1 ORDER BY random()', [
      userId,
    ]);
    fs.writeFileSync(seededIdsFile, all.rows.map((row) => row.id).join('\n') + '\n');
    return picked.rows[0].id;
  });
  return { token, apiKey, userId, taskId, seededIdsFile };
}

/** The database's clock once the seed is in: every row created by the scenarios is newer. */
async function seedMark() {
  return withPg(
    DATABASE_URL,
    async (pg) => (await pg.query('SELECT clock_timestamp() AS t')).rows[0].t,
  );
}

/**
 * Between rounds: deletes the tasks created since `mark` (by the scenarios that write) and
 * vacuums the table, so that the next round reads and writes the seeded data as the first did.
 */
async function restoreSeed(mark) {
  const deleted = await withPg(DATABASE_URL, async (pg) => {
    const { rowCount } = await pg.query('DELETE FROM tasks WHERE created_at > $1', [mark]);
    await pg.query('VACUUM ANALYZE tasks');
    return rowCount;
  });
  log(`restored the seed: deleted the ${deleted} tasks created during the round, vacuumed`);
  await dropRequestLog('purge');
}

/**
 * The apis publish their request log to RabbitMQ, where no worker runs during the benchmark:
 * emptied between rounds (so the broker does not grow through the run) and deleted at the end.
 */
async function dropRequestLog(how) {
  const amqp = require('amqplib');
  const queue = `${API_ENV.RABBITMQ_QUEUE_PREFIX}request-logs`;
  let connection;
  try {
    connection = await amqp.connect(
      process.env.RABBITMQ_URL || 'amqp://guest:guest@localhost:5672',
    );
    const channel = await connection.createChannel();
    if (how === 'purge') await channel.purgeQueue(queue);
    else await channel.deleteQueue(queue);
  } catch (error) {
    log(`could not ${how} the queue ${queue}: ${error.message}`);
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

module.exports = {
  createDatabase,
  deleteQueues,
  deleteWebhooksQueues,
  dropDatabase,
  dropRequestLog,
  restoreSeed,
  seed,
  seedMark,
  seedWebhooks,
  settleWorker,
};
