// @ts-check
'use strict';

/** The load of `npm run bench:capacity`: each request type sent from the load core, the worker's
 * drain, the idle windows, and each type's measured run. */
const fs = require('node:fs');
const path = require('node:path');
const { BenchError, run, sleep } = require('../processes');
const {
  difference,
  perRequest,
  rates,
  snapshot,
  transactions,
  workerMetrics,
} = require('./counters');
const { log, loud } = require('./processes');
const { TYPES } = require('./requests');
const {
  CLIENTS_SCRIPT,
  DRAIN_TIMEOUT_MS,
  IDLE_MS,
  LOAD_CPU,
  RUN_DIR,
  STATS_SETTLE_MS,
} = require('./settings');

/**
 * Sends `n` requests of `type` from the load core (bench/capacity/clients.js's `load` mode);
 * checks the answers.
 */
async function send(s, ctx, type, n) {
  const { concurrency } = type;
  const spec = { method: 'GET', ...type.load(ctx, n), base: s.apiUrl, count: n, concurrency };
  const file = path.join(RUN_DIR, 'capacity-load.json');
  fs.writeFileSync(file, JSON.stringify(spec));
  const result = await run('taskset', ['-c', LOAD_CPU, 'node', CLIENTS_SCRIPT, 'load', file]);
  if (result.code !== 0) throw new BenchError(`the load client failed: ${result.stderr}`);
  const outcome = JSON.parse(result.stdout);
  const problems = [];
  const wrong = n - (outcome.statuses[type.status] ?? 0);
  if (wrong > 0)
    problems.push(
      `${wrong} of ${n} answers were not ${type.status}: ${JSON.stringify(outcome.statuses)}`,
    );
  // A few are not: a local entry lasts CACHE_LOCAL_TTL_MS, then the requests that wait on its
  // reload say hit-redis; a Redis answer later than 50 ms makes a miss a bypass.
  if (type.cache && (outcome.cache[type.cache] ?? 0) < n * 0.95) {
    problems.push(`X-Cache was not ${type.cache} for over 5%: ${JSON.stringify(outcome.cache)}`);
  }
  return { ...outcome, problems };
}

/** Waits until the worker has consumed everything the run produced (request log included). */
async function drain(s) {
  await sleep(1500); // the api's request log publishes a partial batch every REQUEST_LOG_FLUSH_MS
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  let last;
  let steady = 0;
  while (Date.now() < deadline) {
    const { jobs, outboxPending } = await workerMetrics(s.workerUrl);
    const total = Object.values(jobs).reduce((a, b) => a + b, 0);
    steady = total === last && outboxPending === 0 ? steady + 1 : 0;
    if (steady >= 2) return true;
    last = total;
    await sleep(500);
  }
  return false;
}

async function idleWindow(s, what) {
  log(
    `idle: ${what}, ${IDLE_MS / 1000} s (after ${STATS_SETTLE_MS / 1000} s for Postgres's counts)...`,
  );
  await sleep(STATS_SETTLE_MS);
  const [a, txA] = [await snapshot(s), await transactions(s)];
  await sleep(IDLE_MS);
  const [b, txB] = [await snapshot(s), await transactions(s)];
  return rates(difference(a, b, txA, txB));
}

async function measureTypes(s, ctx, idle, scale) {
  log('warm-up: every type once, writes first...');
  for (const type of [...TYPES].reverse()) await send(s, ctx, type, Math.ceil(type.warmup * scale));
  await drain(s);
  await sleep(STATS_SETTLE_MS);
  let tx = await transactions(s);
  const measured = [];
  for (const type of TYPES) {
    const n = Math.max(20, Math.round(type.count * scale));
    const before = await snapshot(s);
    const outcome = await send(s, ctx, type, n);
    const loaded = await snapshot(s);
    const drained = await drain(s);
    const after = await snapshot(s);
    if (!drained)
      outcome.problems.push(`the worker had not drained after ${DRAIN_TIMEOUT_MS / 1000} s`);
    await sleep(STATS_SETTLE_MS);
    const txAfter = await transactions(s);
    const load = difference(before, loaded, tx, txAfter);
    const cost = perRequest(load, difference(before, after, tx, txAfter), idle, n);
    tx = txAfter;
    if (cost.failedJobs > 0) outcome.problems.push('the worker retried or dead-lettered jobs');
    const row = { type, n, outcome, cost };
    measured.push(row);
    log(`${type.key}: ${n} requests in ${outcome.seconds.toFixed(1)} s; ${costLine(cost)}`);
    if (outcome.problems.length > 0) loud([`${type.key}:`, ...outcome.problems]);
  }
  return measured;
}

const costLine = (c) =>
  `api ${c.apiUs.toFixed(0)} µs, worker ${c.workerUs.toFixed(0)} µs, PG ${c.tx.toFixed(3)} tx ` +
  `(${c.pgUs.toFixed(0)} µs), Redis ${c.redisCommands.toFixed(2)} commands (${c.redisUs.toFixed(1)} µs), ` +
  `RabbitMQ ${c.messages.toFixed(4)} messages`;

module.exports = { idleWindow, measureTypes, send };
