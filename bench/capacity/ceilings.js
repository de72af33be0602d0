// @ts-check
'use strict';

/** The single-node ceilings `npm run bench:capacity` measures, with the api and the worker
 * stopped: Redis (redis-benchmark), Postgres (pgbench) and RabbitMQ (bench/capacity/clients.js's
 * `rabbit` mode), and the size of the messages the model counts. */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { withPg } = require('../lib');
const { BenchError, run, sleep, stop, track } = require('../processes');
const { backendTimes, spent, threadTimes } = require('./counters');
const { send } = require('./load');
const { log } = require('./processes');
const { TYPES } = require('./requests');
const {
  CLIENTS_SCRIPT,
  DATABASE,
  DATABASE_URL,
  DIST,
  LOAD_CPU,
  OVERRIDE_PER_MINUTE,
  QUEUE_PREFIX,
  RABBITMQ_URL,
  READY_TIMEOUT_MS,
  ROOT,
  RUN_DIR,
  SERVER_CPU,
} = require('./settings');

/** redis-benchmark pinned to the load core against our redis-server on the server core. */
async function redisBenchmark(s, label, n, args) {
  const before = threadTimes(s.redisServer.pid);
  const result = await run('taskset', [
    '-c',
    LOAD_CPU,
    'redis-benchmark',
    ...['-u', s.redisUrl, '-c', '50', '-n', String(n), '--csv'],
    ...args,
  ]);
  const cpuNs = spent(before, threadTimes(s.redisServer.pid));
  const line = result.stdout.split('\n')[1];
  if (result.code !== 0 || !line) {
    throw new BenchError(`redis-benchmark ${label}: ${result.stderr || result.stdout}`);
  }
  return [{ label, rps: Number(JSON.parse(`[${line}]`)[1]), us: cpuNs / 1e3 / n }];
}

async function redisCeilings(s, valueBytes) {
  log(
    `Redis ceilings: redis-server moved to core ${SERVER_CPU}, redis-benchmark on core ${LOAD_CPU}...`,
  );
  await run('taskset', ['-cp', SERVER_CPU, String(s.redisServer.pid)]);
  const { SLIDING_WINDOW_LUA, BUCKETS } = require(
    path.join(DIST, 'api/libs/rate-limit/src/sliding-window.js'),
  );
  const sha = await s.redis.script('LOAD', SLIDING_WINDOW_LUA);
  // 1 000 clients, each with a slot of the window live in every second: a steady client's state.
  const [seconds] = await s.redis.time();
  const pipeline = s.redis.pipeline();
  for (let k = 0; k < 1000; k += 1) {
    const key = `rl:${String(k).padStart(12, '0')}`;
    for (let slot = Number(seconds) - BUCKETS + 2; slot <= Number(seconds); slot += 1) {
      pipeline.hset(key, String(slot), '3');
    }
  }
  await pipeline.exec();
  const results = [
    ...(await redisBenchmark(s, 'EVALSHA, the sliding window, 60 live slots', 100_000, [
      ...['-r', '1000', 'evalsha', sha, '1', 'rl:__rand_int__'],
      // limit, window (ms), no deadline, one permit wanted, an instance, nothing given back.
      ...[String(OVERRIDE_PER_MINUTE), '60000', '0', '1', 'capacity', '0', '0'],
    ])),
    ...(await redisBenchmark(s, `SET of ${valueBytes} B`, 100_000, [
      ...['-r', '100000', '-d', String(valueBytes), '-t', 'set'],
    ])),
    ...(await redisBenchmark(s, `GET of ${valueBytes} B`, 100_000, [
      ...['-r', '100000', '-d', String(valueBytes), '-t', 'get'],
    ])),
  ];
  const message = ['publish', 'capacity:bump', `tasks:${'0'.repeat(36)} 1800000000000`];
  const alone = await redisBenchmark(s, 'PUBLISH, no subscriber', 50_000, message);
  const subscribers = Array.from({ length: 20 }, () =>
    track(
      spawn(
        'taskset',
        ['-c', LOAD_CPU, 'redis-cli', '-u', s.redisUrl, 'subscribe', 'capacity:bump'],
        { cwd: ROOT, stdio: 'ignore' },
      ),
    ),
  );
  try {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while ((await s.redis.pubsub('NUMSUB', 'capacity:bump'))[1] < 20) {
      if (Date.now() > deadline) throw new BenchError('redis-cli subscribers did not subscribe');
      await sleep(100);
    }
    const fanned = await redisBenchmark(s, 'PUBLISH, 20 subscribers', 50_000, message);
    results.push(...alone, ...fanned);
    const deliveryUs = (fanned[0].us - alone[0].us) / 20;
    return { results, evalsha: results[0], deliveryUs };
  } finally {
    await Promise.all(subscribers.map((child) => stop(child)));
  }
}

/** pgbench, pinned to the load core, against our database: Taskhub's own two hot statements. */
async function postgresCeilings(s, ctx) {
  log('Postgres ceilings: pgbench of the POST transaction and of the read by id...');
  const { TASK_COLUMNS } = require(path.join(DIST, 'api/libs/database/src/tasks.js'));
  const event = await withPg(DATABASE_URL, async (pg) => {
    const { rows } = await pg.query(
      `SELECT queue, pattern, payload::text AS payload FROM outbox ORDER BY id DESC LIMIT 1`,
    );
    return rows[0];
  });
  // pgbench takes every `:name` as a variable, even in a literal: the event goes in as variables.
  const scripts = {
    write: [
      'BEGIN;',
      `INSERT INTO tasks (user_id, title, description, priority, tags)
  VALUES (:uid, 'pgbench task', 'Created by npm run bench-capacity', 'high', '{bench,capacity}')
  RETURNING id, status, version, created_at, updated_at;`,
      'INSERT INTO outbox (queue, pattern, payload) VALUES (:queue, :pattern, :payload) RETURNING message_id;',
      'COMMIT;',
    ],
    read: [`SELECT ${TASK_COLUMNS} FROM tasks t WHERE t.id = :id AND t.user_id = :uid;`],
  };
  const variables = { uid: ctx.userId, id: ctx.hotId, ...event };
  const ceilings = {};
  for (const [name, lines] of Object.entries(scripts)) {
    const file = path.join(RUN_DIR, `capacity-${name}.sql`);
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    const pgbench = run('taskset', [
      ...['-c', LOAD_CPU, '/usr/lib/postgresql/15/bin/pgbench', '-h', '127.0.0.1'],
      ...['-U', 'postgres', '-n', '-M', 'prepared', '-c', '10', '-j', '1', '-T', '8', '-f', file],
      ...Object.entries(variables).flatMap(([variable, value]) => ['-D', `${variable}=${value}`]),
      DATABASE,
    ]);
    // The backends' CPU in the middle of the run (they exit with pgbench).
    await sleep(2000);
    const [a, at] = [await backendTimes(s), performance.now()];
    await sleep(5000);
    const cores = spent(a, await backendTimes(s)) / 1e6 / (performance.now() - at);
    const result = await pgbench;
    const found = /^tps = ([\d.]+)/m.exec(result.stdout);
    if (result.code !== 0 || !found) throw new BenchError(`pgbench ${name}: ${result.stderr}`);
    ceilings[name] = { tps: Number(found[1]), cores, us: (cores * 1e6) / Number(found[1]) };
  }
  return ceilings;
}

/**
 * The size of the two messages the model counts: a task event as the relay publishes it (Nest's
 * RMQ client sends {pattern, data}), from the outbox; and a request-log batch, taken from its
 * queue with the worker stopped, after enough requests for a full batch.
 */
async function messageSizes(s, ctx) {
  await stop(s.worker);
  await send(s, ctx, TYPES[0], 1500);
  await sleep(1500);
  const event = await withPg(DATABASE_URL, async (pg) => {
    const { rows } = await pg.query(
      `SELECT pattern, payload FROM outbox WHERE queue = 'task-events' ORDER BY id DESC LIMIT 1`,
    );
    return JSON.stringify({ pattern: rows[0].pattern, data: rows[0].payload });
  });
  const amqp = require('amqplib');
  const connection = await amqp.connect(RABBITMQ_URL);
  try {
    const channel = await connection.createChannel();
    // The largest: a batch is also published, partial, every REQUEST_LOG_FLUSH_MS.
    let batch;
    for (let got; (got = await channel.get(`${QUEUE_PREFIX}request-logs`, { noAck: true }));) {
      if (!batch || got.content.length > batch.content.length) batch = got;
    }
    if (!batch) throw new BenchError('no request-log batch came to weigh');
    const entries = JSON.parse(JSON.parse(batch.content.toString()).data.entries).length;
    return { event: Buffer.byteLength(event), batch: batch.content.length, entries };
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/**
 * bench/capacity/clients.js's `rabbit` mode, pinned to the load core: persistent messages,
 * confirms, acks.
 */
async function rabbitCeiling(size) {
  log(`RabbitMQ ceiling: ${size} B persistent messages, confirmed, consumed with acks...`);
  const spec = { queue: `${QUEUE_PREFIX}capacity-ceiling`, size, seconds: 4, inFlight: 100 };
  const result = await run('taskset', [
    ...['-c', LOAD_CPU, 'node', CLIENTS_SCRIPT, 'rabbit', JSON.stringify(spec)],
  ]);
  if (result.code !== 0) throw new BenchError(`the RabbitMQ ceiling failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

module.exports = { messageSizes, postgresCeilings, rabbitCeiling, redisCeilings };
