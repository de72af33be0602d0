// @ts-check
'use strict';

/** What `npm run bench:capacity` reads before and after a run: the on-CPU time of threads from
 * /proc, Redis's INFO commandstats, the worker's RabbitMQ job counts, Postgres's transactions;
 * and from two readings, what one request cost. */
const fs = require('node:fs');
const { DATABASE } = require('./settings');

/** On-CPU time (ns) of each thread of `pid` (threads that have exited are not seen). */
function threadTimes(pid) {
  const times = new Map();
  let tids = [];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return times;
  }
  for (const tid of tids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8');
      times.set(`${pid}/${tid}`, Number(stat.split(' ')[0]));
    } catch {
      // The thread exited meanwhile.
    }
  }
  return times;
}

/** ns spent between two readings by what is in `after` (a new thread: all of its time). */
function spent(before, after) {
  let ns = 0;
  for (const [id, time] of after) ns += time - (before.get(id) ?? 0);
  return ns;
}

async function redisCalls(redis) {
  const calls = {};
  const text = await redis.info('commandstats');
  // Our own INFO calls are not the apps'.
  for (const [, name, n] of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (name !== 'info') calls[name] = Number(n);
  }
  return calls;
}

async function workerMetrics(url) {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const jobs = {};
  for (const [, labels, n] of text.matchAll(/^jobs_processed_total\{([^}]*)\} (\S+)$/gm)) {
    const label = (name) => new RegExp(`${name}="([^"]*)"`).exec(labels)?.[1];
    jobs[`${label('queue')} ${label('outcome')}`] = Number(n);
  }
  return { jobs, outboxPending: Number(/^outbox_pending (\S+)$/m.exec(text)?.[1] ?? 0) };
}

/** On-CPU time of the database's client backends (not autovacuum: it comes when it will). */
async function backendTimes(s) {
  const { rows } = await s.admin.query(
    `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'`,
    [DATABASE],
  );
  return new Map(rows.flatMap(({ pid }) => [...threadTimes(pid)]));
}

/** Every counter but Postgres's transactions, which lag (see STATS_SETTLE_MS). */
async function snapshot(s) {
  const backends = await backendTimes(s);
  return {
    at: performance.now(),
    api: threadTimes(s.api.pid),
    worker: s.worker ? threadTimes(s.worker.pid) : new Map(),
    redis: threadTimes(s.redisServer.pid),
    backends,
    calls: await redisCalls(s.redis),
    jobs: s.worker ? (await workerMetrics(s.workerUrl)).jobs : {},
  };
}

async function transactions(s) {
  await s.admin.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await s.admin.query(
    'SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = $1',
    [DATABASE],
  );
  return { at: performance.now(), n: Number(rows[0].n) };
}

/** What changed between two snapshots, as flat figures, and over how many seconds. */
function difference(a, b, txA, txB) {
  const values = {
    apiUs: spent(a.api, b.api) / 1e3,
    workerUs: spent(a.worker, b.worker) / 1e3,
    redisUs: spent(a.redis, b.redis) / 1e3,
    pgUs: spent(a.backends, b.backends) / 1e3,
  };
  for (const [name, n] of Object.entries(b.calls))
    values[`redis ${name}`] = n - (a.calls[name] ?? 0);
  for (const [name, n] of Object.entries(b.jobs)) values[`jobs ${name}`] = n - (a.jobs[name] ?? 0);
  return {
    seconds: (b.at - a.at) / 1000,
    values,
    tx: txB.n - txA.n,
    txSeconds: (txB.at - txA.at) / 1000,
  };
}

/**
 * Per-second rates of an idle window (`commands`: the Redis commands among them, added by the run).
 * @returns {{ values: Record<string, number>, tx: number, commands?: number }}
 */
function rates(d) {
  /** @type {Record<string, number>} */
  const perSecond = {};
  for (const [name, v] of Object.entries(d.values)) perSecond[name] = v / d.seconds;
  return { values: perSecond, tx: d.tx / d.txSeconds };
}

/** The api's and Redis's figures: nothing is left for them to do once the load is answered. */
const duringLoad = (name) => name === 'apiUs' || name.startsWith('redis');

/**
 * What one request cost: the deltas less the idle rates over the same time, over n; the api's
 * and Redis's over the load alone (`load`), the others' until the worker had drained (`d`).
 */
function perRequest(load, d, idle, n) {
  const values = {};
  const names = new Set([...Object.keys(d.values), ...Object.keys(idle.values)]);
  for (const name of names) {
    const { values: delta, seconds } = duringLoad(name) ? load : d;
    values[name] = ((delta[name] ?? 0) - (idle.values[name] ?? 0) * seconds) / n;
  }
  const sum = (prefix) =>
    Object.entries(values)
      .filter(([name]) => name.startsWith(prefix))
      .reduce((total, [, v]) => total + v, 0);
  return {
    apiUs: values.apiUs,
    workerUs: values.workerUs,
    pgUs: values.pgUs,
    redisUs: values.redisUs,
    tx: (d.tx - idle.tx * d.txSeconds) / n,
    redisCommands: sum('redis '),
    byCommand: Object.fromEntries(
      Object.entries(values)
        .filter(([name]) => name.startsWith('redis '))
        .map(([name, v]) => [name.slice(6), v]),
    ),
    messages: sum('jobs '),
    events: sum('jobs task-events '),
    logBatches: sum('jobs request-logs '),
    failedJobs: Object.entries(values)
      .filter(([name]) => name.startsWith('jobs ') && !name.endsWith(' succeeded'))
      .reduce((total, [, v]) => total + v, 0),
  };
}

module.exports = {
  backendTimes,
  difference,
  perRequest,
  rates,
  snapshot,
  spent,
  threadTimes,
  transactions,
  workerMetrics,
};
