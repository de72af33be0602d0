// @ts-check
'use strict';

/**
 * The bare equivalents `npm run bench` measures the api against: bare Fastify doing the same I/O as
 * each benchmarked route, with nothing else (no framework, no guards, no telemetry, no cache).
 *
 *   GET    /json/tasks/:id   the same JSON body as the api's task, parsed once, serialised each time
 *   GET    /v1/tasks/:id     JWT check, one prepared read by id and owner
 *   GET    /v1/tasks         JWT check, one prepared keyset page (limit, newest first) by owner
 *   POST   /v1/tasks         JWT check, a transaction: the task row and an outbox row
 *   PATCH  /v1/tasks/:id     JWT check, a transaction: the owner's row updated, an outbox row
 *   DELETE /v1/tasks/:id     JWT check, a transaction: the owner's row deleted, an outbox row
 *
 * The JWT is the api's own (same secret, issuer and audience), verified by fast-jwt on every
 * request. Every statement is a named prepared statement on a pg Pool of the api's size.
 *
 *   BENCH_BARE_PORT=3991 BENCH_BARE_BODY_FILE=bench/.run/task.json DATABASE_URL=... \
 *   JWT_SECRET=... node bench/bare-server.js
 */
const { readFileSync } = require('node:fs');
const { randomUUID } = require('node:crypto');
const fastify = require('fastify');
const { createVerifier } = require('fast-jwt');
const { Pool } = require('pg');

const port = Number(process.env.BENCH_BARE_PORT);
const bodyFile = process.env.BENCH_BARE_BODY_FILE;
const { DATABASE_URL, JWT_SECRET } = process.env;
if (!Number.isInteger(port) || port <= 0 || !bodyFile || !DATABASE_URL || !JWT_SECRET) {
  process.stderr.write(
    'bare-server: set BENCH_BARE_PORT, BENCH_BARE_BODY_FILE, DATABASE_URL and JWT_SECRET\n',
  );
  process.exit(2);
}
const json = JSON.parse(readFileSync(bodyFile, 'utf8'));
const pool = new Pool({
  connectionString: DATABASE_URL,
  max: Number(process.env.DATABASE_POOL_SIZE ?? 10),
});
const verify = createVerifier({
  key: JWT_SECRET,
  algorithms: ['HS256'],
  allowedIss: process.env.JWT_ISSUER ?? 'taskhub',
  allowedAud: process.env.JWT_AUDIENCE ?? 'taskhub-api',
});

const COLUMNS = `id, title, description, status, priority, due_date, category_id, tags, version,
  created_at, updated_at`;

/** @param {Record<string, any>} row */
const resource = (row) => ({
  id: row.id,
  title: row.title,
  description: row.description,
  status: row.status,
  priority: row.priority,
  dueDate: row.due_date ? row.due_date.toISOString() : null,
  categoryId: row.category_id,
  tags: row.tags,
  version: row.version,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
});

/** The caller's user id from the Bearer token; throws (401) when it does not verify. */
function userOf(/** @type {import('fastify').FastifyRequest} */ request) {
  const header = request.headers.authorization ?? '';
  try {
    return /** @type {{ sub: string }} */ (verify(header.slice(7))).sub;
  } catch {
    const error = Object.assign(new Error('unauthorized'), { statusCode: 401 });
    throw error;
  }
}

/**
 * @param {string} userId
 * @param {string} type
 * @param {unknown} data
 */
const outboxRow = (userId, type, data) =>
  JSON.stringify({ id: randomUUID(), type, createdAt: new Date().toISOString(), userId, data });

/**
 * BEGIN, the change, its outbox row, COMMIT on one connection (ROLLBACK on failure).
 * @param {(client: import('pg').PoolClient) => Promise<unknown>} work
 */
async function transaction(work) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** @param {import('pg').PoolClient} client @param {string} userId @param {string} type @param {unknown} data */
const announce = (client, userId, type, data) =>
  client.query({
    name: 'bare_outbox',
    text: `INSERT INTO outbox (queue, pattern, payload) VALUES ('task-events', 'task.event', $1)`,
    values: [outboxRow(userId, type, data)],
  });

const app = fastify({ logger: false });

app.get('/json/tasks/:id', () => json);

app.get('/v1/tasks/:id', async (request, reply) => {
  const userId = userOf(request);
  const { id } = /** @type {{ id: string }} */ (request.params);
  const { rows } = await pool.query({
    name: 'bare_read',
    text: `SELECT ${COLUMNS} FROM tasks WHERE id = $1 AND user_id = $2`,
    values: [id, userId],
  });
  if (rows.length === 0) return reply.code(404).send({ status: 404 });
  return resource(rows[0]);
});

app.get('/v1/tasks', async (request) => {
  const userId = userOf(request);
  const limit = Math.min(
    Number(/** @type {{ limit?: string }} */ (request.query).limit ?? 20),
    100,
  );
  const { rows } = await pool.query({
    name: 'bare_page',
    text: `SELECT ${COLUMNS} FROM tasks WHERE user_id = $1
            ORDER BY created_at DESC, id DESC LIMIT $2`,
    values: [userId, limit + 1],
  });
  const data = rows.slice(0, limit).map(resource);
  const last = data.at(-1);
  const nextCursor =
    rows.length > limit && last
      ? Buffer.from(JSON.stringify([last.createdAt, last.id])).toString('base64url')
      : null;
  return { data, nextCursor };
});

app.post('/v1/tasks', async (request, reply) => {
  const userId = userOf(request);
  const body = /** @type {Record<string, any>} */ (request.body);
  const task = await transaction(async (client) => {
    const { rows } = await client.query({
      name: 'bare_insert',
      text: `INSERT INTO tasks (user_id, title, description, priority, tags)
             VALUES ($1, $2, $3, coalesce($4, 'medium')::task_priority, coalesce($5::text[], '{}'))
             RETURNING ${COLUMNS}`,
      values: [userId, body.title, body.description ?? null, body.priority, body.tags],
    });
    const created = resource(rows[0]);
    await announce(client, userId, 'task.created', created);
    return created;
  });
  return reply.code(201).send(task);
});

app.patch('/v1/tasks/:id', async (request, reply) => {
  const userId = userOf(request);
  const { id } = /** @type {{ id: string }} */ (request.params);
  const body = /** @type {Record<string, any>} */ (request.body);
  const task = await transaction(async (client) => {
    const { rows } = await client.query({
      name: 'bare_update',
      text: `UPDATE tasks SET title = coalesce($3, title), status = coalesce($4, status::text)::task_status,
               version = version + 1, updated_at = now()
             WHERE id = $1 AND user_id = $2 RETURNING ${COLUMNS}`,
      values: [id, userId, body.title ?? null, body.status ?? null],
    });
    if (rows.length === 0) return undefined;
    const updated = resource(rows[0]);
    await announce(client, userId, 'task.updated', updated);
    return updated;
  });
  return task ? task : reply.code(404).send({ status: 404 });
});

app.delete('/v1/tasks/:id', async (request, reply) => {
  const userId = userOf(request);
  const { id } = /** @type {{ id: string }} */ (request.params);
  const deleted = await transaction(async (client) => {
    const { rowCount } = await client.query({
      name: 'bare_delete',
      text: 'DELETE FROM tasks WHERE id = $1 AND user_id = $2',
      values: [id, userId],
    });
    if (rowCount === 0) return false;
    await announce(client, userId, 'task.deleted', { id });
    return true;
  });
  return reply.code(deleted ? 204 : 404).send();
});

app.listen({ port, host: '127.0.0.1' }).then(
  () => process.stdout.write(`bare server listening on http://127.0.0.1:${port}\n`),
  (error) => {
    process.stderr.write(`bare server failed to start: ${String(error)}\n`);
    process.exit(1);
  },
);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    Promise.all([app.close(), pool.end()]).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
