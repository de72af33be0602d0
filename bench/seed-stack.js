// @ts-check
'use strict';

/**
 * The stack the seed designs drew, for `npm run bench` to measure the api against: Express,
 * jsonwebtoken and a Redis cache-aside read, as a typical Express service serves
 * `GET /v1/tasks/:id` (warm: the task is in Redis after the first read).
 *
 *   BENCH_SEED_PORT=3989 DATABASE_URL=... JWT_SECRET=... REDIS_URL=... node bench/seed-stack.js
 */
const express = require('express');
const jwt = require('jsonwebtoken');
const Redis = require('ioredis').default;
const { Pool } = require('pg');

const port = Number(process.env.BENCH_SEED_PORT);
const { DATABASE_URL, JWT_SECRET } = process.env;
if (!Number.isInteger(port) || port <= 0 || !DATABASE_URL || !JWT_SECRET) {
  process.stderr.write('seed-stack: set BENCH_SEED_PORT, DATABASE_URL and JWT_SECRET\n');
  process.exit(2);
}
const pool = new Pool({ connectionString: DATABASE_URL, max: 10 });
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
  keyPrefix: `taskhub-bench-seed-${process.pid}:`,
});
const CACHE_SECONDS = 60;
/** What it cached, deleted when it stops. */
const written = new Set();

const app = express();
app.use(express.json());

/**
 * @param {import('express').Request} req
 * @param {import('express').Response} res
 * @param {import('express').NextFunction} next
 */
const authenticate = (req, res, next) => {
  const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
  try {
    const claims = jwt.verify(token, JWT_SECRET, {
      algorithms: ['HS256'],
      issuer: process.env.JWT_ISSUER ?? 'taskhub',
      audience: process.env.JWT_AUDIENCE ?? 'taskhub-api',
    });
    res.locals.userId = /** @type {jwt.JwtPayload} */ (claims).sub;
    next();
  } catch {
    res.status(401).json({ message: 'unauthorized' });
  }
};

app.get('/v1/tasks/:id', authenticate, async (req, res, next) => {
  try {
    const key = `task:${res.locals.userId}:${req.params.id}`;
    const cached = await redis.get(key);
    if (cached) return res.json(JSON.parse(cached));
    const { rows } = await pool.query(
      `SELECT id, title, description, status, priority, due_date AS "dueDate",
              category_id AS "categoryId", tags, version, created_at AS "createdAt",
              updated_at AS "updatedAt"
         FROM tasks WHERE id = $1 AND user_id = $2`,
      [req.params.id, res.locals.userId],
    );
    if (rows.length === 0) return res.status(404).json({ message: 'not found' });
    await redis.set(key, JSON.stringify(rows[0]), 'EX', CACHE_SECONDS);
    written.add(key);
    return res.json(rows[0]);
  } catch (error) {
    return next(error);
  }
});

const server = app.listen(port, '127.0.0.1', () =>
  process.stdout.write(`seed-style stack listening on http://127.0.0.1:${port}\n`),
);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    server.close();
    (written.size > 0 ? redis.del(...written) : Promise.resolve(0))
      .catch(() => undefined)
      .finally(() => {
        redis.disconnect();
        pool.end().finally(() => process.exit(0));
      });
  });
}
