// @ts-check
'use strict';

/**
 * `npm run bench:capacity`: what one request of each type costs the api, the worker, Postgres,
 * Redis and RabbitMQ; the single-node ceilings of those shared parts on this machine; and from
 * both, a capacity model for a fleet. Writes bench/CAPACITY.md (overwritten).
 *
 * Set up like `npm run bench` (bench/run.js): a fresh build, the api in production mode pinned to
 * core 0, rate limiting on (with an override of 10⁹ a minute for the seeded user, API key and
 * 127.0.0.1, so every request takes its decision in Redis and is admitted), cache on, request log
 * on; plus a worker, a redis-server of its own (so Redis counts only this api and worker) and the
 * load client, all pinned to core 1; a database and queues of its own, dropped and deleted after.
 *
 * For each request type, a fixed number of requests at a fixed concurrency (after one warm-up
 * pass of every type), then, once the worker has drained, the deltas over the run:
 *   - api and worker CPU: on-CPU time of the processes' threads (/proc/<pid>/task/<tid>/schedstat)
 *   - Postgres: transactions (pg_stat_database xact_commit + xact_rollback of the database; read
 *     STATS_SETTLE_MS after the run, see settings.js) and the on-CPU time of its client backends
 *   - Redis: INFO commandstats (commands run inside scripts included) and redis-server's CPU
 *   - RabbitMQ: messages consumed, the delta of the worker's jobs_processed_total
 * less what the api and the worker do by themselves, measured over an idle window before.
 *
 * BENCH_CAPACITY_SCALE (default 1): multiplies every type's number of requests.
 * Exit status: 0 when it ran (problems are printed loudly and listed in the file), 1 when it could
 * not run, 130 when interrupted.
 *
 * The parts, one role each, in bench/capacity/: settings.js, requests.js (the request types),
 * processes.js, servers.js, data.js, counters.js (/proc, Redis, Postgres and RabbitMQ counters),
 * load.js, ceilings.js, model.js, report.js, and clients.js (the load client and the RabbitMQ
 * ceiling, run as child processes); with bench/processes.js, lib.js, data.js and report.js.
 */
const { randomBytes } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { deleteQueues, dropDatabase } = require('../data');
const { withPg } = require('../lib');
const { BenchError, children, run, runMain, sleep, stop } = require('../processes');
const { loadAverage } = require('../report');
const { messageSizes, postgresCeilings, rabbitCeiling, redisCeilings } = require('./ceilings');
const { spent, threadTimes } = require('./counters');
const { seed } = require('./data');
const { idleWindow, measureTypes } = require('./load');
const { log } = require('./processes');
const { report } = require('./report');
const { TYPES } = require('./requests');
const { build, startApi, startRedis, startWorker } = require('./servers');
const {
  DATABASE,
  DATABASE_URL,
  DIST,
  MEASUREMENTS,
  OUTPUT,
  PG_ADMIN_URL,
  QUEUE_PREFIX,
  RABBITMQ_URL,
  ROOT,
  RUN_DIR,
} = require('./settings');

/**
 * What cleanup() stops, closes and deletes, filled in as the run starts things.
 * @type {Record<string, any>}
 */
const state = {};

let cleaning;
function cleanup() {
  cleaning ??= (async () => {
    await Promise.all([stop(state.api), stop(state.worker)]);
    state.redis?.disconnect();
    await Promise.all([...children].map((child) => stop(child)));
    await state.admin?.end().catch(() => undefined);
    if (state.queues)
      await deleteQueues({ RABBITMQ_URL, RABBITMQ_QUEUE_PREFIX: QUEUE_PREFIX }).catch((e) =>
        log(`could not delete the queues: ${e.message}`),
      );
    if (state.database)
      await dropDatabase(DATABASE).catch((e) => log(`could not drop ${DATABASE}: ${e.message}`));
  })();
  return cleaning;
}

function scaleKnob() {
  const text = (process.env.BENCH_CAPACITY_SCALE ?? '').trim();
  if (text === '') return 1;
  const scale = Number(text);
  if (!(scale > 0 && scale <= 10)) {
    throw new BenchError(`BENCH_CAPACITY_SCALE must be a number in (0, 10], not "${text}"`);
  }
  return scale;
}

async function versions() {
  const redis = (await run('redis-server', ['--version'])).stdout.match(/v=(\S+)/)?.[1];
  const pg = await withPg(
    PG_ADMIN_URL,
    async (c) => (await c.query('SHOW server_version')).rows[0],
  );
  return `Redis ${redis}, PostgreSQL ${pg.server_version}`;
}

async function main() {
  const startedAt = Date.now();
  const scale = scaleKnob();
  fs.mkdirSync(RUN_DIR, { recursive: true });
  await build();
  const commit = (await run('git', ['rev-parse', '--short', 'HEAD'])).stdout.trim();
  const dirty = (await run('git', ['status', '--porcelain', '--untracked-files=no'])).stdout.trim();
  /** @type {Record<string, any>} */
  const meta = {
    date: new Date().toISOString(),
    commit: `${commit}${dirty ? ' (with uncommitted changes)' : ''}`,
    loadBefore: loadAverage(),
    versions: await versions(),
    scale,
  };
  const s = state;
  s.secret = randomBytes(36).toString('base64url');
  const { Client } = require('pg');
  s.admin = new Client({ connectionString: PG_ADMIN_URL });
  await s.admin.connect();
  await startRedis(s);
  // Redis's own background work (serverCron...), to tell it from what each api instance adds.
  /** @type {[Map<string, number>, number]} */
  const quiet = [threadTimes(s.redisServer.pid), performance.now()];
  await sleep(5000);
  const redisAloneUs =
    spent(quiet[0], threadTimes(s.redisServer.pid)) / 1e3 / ((performance.now() - quiet[1]) / 1000);
  log(`creating a fresh database ${DATABASE}...`);
  state.database = true;
  await dropDatabase(DATABASE);
  await withPg(PG_ADMIN_URL, (pg) => pg.query(`CREATE DATABASE ${DATABASE}`));
  state.queues = true;
  await startApi(s);
  const distinct = TYPES.filter((t) => t.key === 'item-miss' || t.key === 'patch');
  const needed = distinct.reduce((sum, t) => sum + Math.ceil((t.count + t.warmup) * scale) + 20, 0);
  const ctx = await seed(s, needed + 1000);

  const idleApi = await idleWindow(s, 'the api alone');
  await startWorker(s);
  const idle = await idleWindow(s, 'the api and the worker');
  const commands = (r) =>
    Object.entries(r.values)
      .filter(([name]) => name.startsWith('redis '))
      .reduce((sum, [, v]) => sum + v, 0);
  idleApi.commands = commands(idleApi);
  idle.commands = commands(idle);

  const measured = await measureTypes(s, ctx, idle, scale);
  const sizes = await messageSizes(s, ctx);
  await stop(s.api);

  const taskBytes = await withPg(DATABASE_URL, async (pg) => {
    const { TASK_COLUMNS } = require(path.join(DIST, 'api/libs/database/src/tasks.js'));
    const { rows } = await pg.query(
      `SELECT row_to_json(x)::text AS j FROM (SELECT ${TASK_COLUMNS} FROM tasks t WHERE t.id = $1) x`,
      [ctx.hotId],
    );
    return rows[0].j.length + 20;
  });
  /** @type {Record<string, any>} */
  const ceilings = {
    redis: await redisCeilings(s, taskBytes),
    postgres: await postgresCeilings(s, ctx),
    rabbitRuns: [await rabbitCeiling(sizes.event), await rabbitCeiling(sizes.batch)],
  };
  ceilings.rabbit = { event: ceilings.rabbitRuns[0], batch: ceilings.rabbitRuns[1], sizes };

  const { loadConfig } = require(path.join(DIST, 'api/libs/config/src/config.js'));
  const m = {
    meta,
    measured,
    costs: Object.fromEntries(measured.map(({ type, cost }) => [type.key, { ...cost, type }])),
    idleApi,
    idle,
    idleWorkerTx: idle.tx - idleApi.tx,
    redisAloneUs,
    ceilings,
    logBatchSize: loadConfig({}).requestLog.batchSize,
  };
  meta.loadAfter = loadAverage();
  meta.minutes = ((Date.now() - startedAt) / 60_000).toFixed(1);
  meta.versions += `, RabbitMQ ${ceilings.rabbit.event.version ?? 'unknown'}`;
  fs.writeFileSync(MEASUREMENTS, JSON.stringify(m, null, 1));
  await report(m);
  log(`wrote ${path.relative(ROOT, OUTPUT)} (${meta.minutes} min)`);
}

if (process.argv[2] === 'report') {
  report(JSON.parse(fs.readFileSync(MEASUREMENTS, 'utf8'))).catch((error) => {
    process.stderr.write(`${error.stack}\n`);
    process.exit(1);
  });
} else {
  runMain(main, cleanup, {
    say: log,
    failure: '[capacity] the capacity run could not complete',
  });
}
