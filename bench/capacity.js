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
 *     STATS_SETTLE_MS after the run, see there) and the on-CPU time of its client backends
 *   - Redis: INFO commandstats (commands run inside scripts included) and redis-server's CPU
 *   - RabbitMQ: messages consumed, the delta of the worker's jobs_processed_total
 * less what the api and the worker do by themselves, measured over an idle window before.
 *
 * BENCH_CAPACITY_SCALE (default 1): multiplies every type's number of requests.
 * Exit status: 0 when it ran (problems are printed loudly and listed in the file), 1 when it could
 * not run, 130 when interrupted.
 */
const { spawn } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { NODE_RUNTIME_FLAGS } = require('../scripts/runtime');
const { portIsFree, withPg } = require('./lib');

const ROOT = path.resolve(__dirname, '..');
const RUN_DIR = path.join(__dirname, '.run');
const OUTPUT = path.join(__dirname, 'CAPACITY.md');
/** The last run's measurements: `node bench/capacity.js report` remakes the model from them. */
const MEASUREMENTS = path.join(RUN_DIR, 'capacity.json');
const DIST = path.join(ROOT, 'dist/apps');
const API_ENTRY = path.join(DIST, 'api/apps/api/src/main.js');
const WORKER_ENTRY = path.join(DIST, 'worker/apps/worker/src/main.js');

const DATABASE = 'taskhub_capacity';
const PG_ADMIN_URL = 'postgres://postgres@localhost:5432/postgres';
const DATABASE_URL = `postgres://postgres@localhost:5432/${DATABASE}`;
const RABBITMQ_URL = 'amqp://guest:guest@localhost:5672';
const QUEUE_PREFIX = 'taskhub-capacity.';
const PORTS = { api: 3980, worker: 3981, redis: 6390 };
const SERVER_CPU = '0';
const LOAD_CPU = '1';
const OVERRIDE_PER_MINUTE = 1_000_000_000;
const PASSWORD = 'capacity-password';
/**
 * A backend publishes its transaction counts at most once a second (PGSTAT_MIN_INTERVAL); counts
 * it could not publish wait until its next transaction or, idle, PGSTAT_IDLE_INTERVAL (10 s). So
 * pg_stat_database is read this long after a run's last transaction; the idle rate over the same
 * interval is subtracted.
 */
const STATS_SETTLE_MS = 11_000;
const IDLE_MS = 20_000;
const DRAIN_TIMEOUT_MS = 60_000;
const READY_TIMEOUT_MS = 30_000;

/** The model's assumptions. */
const TARGET_UTILISATION = 0.7;
const SCALES = [10_000, 100_000];
const HIT_RATIO = 0.9;
const MIXES = [
  { label: 'read-heavy', items: 0.8, lists: 0.15, writes: 0.05 },
  { label: 'write-heavy', items: 0.65, lists: 0.15, writes: 0.2 },
];

const bearer = (ctx) => ({ authorization: `Bearer ${ctx.token}` });
const json = { 'content-type': 'application/json' };
/** A distinct `dueBefore` far in the future per request: a cache key never seen, the same page. */
let dueBefore = Date.UTC(2100, 0, 1);
const coldListPath = () => `/v1/tasks?limit=20&dueBefore=${new Date(dueBefore++).toISOString()}`;

/**
 * The request types, measured in this order (writes last, so the cached reads stay cached); the
 * warm-up runs them in the opposite order. `load(ctx, n)` gives {method, headers, paths, body};
 * `{i}` in a body becomes the request's number. `readTx`: Postgres transactions per request that
 * are reads a replica could serve (the miss's load); the rest count as the primary's.
 */
const TYPES = [
  {
    key: 'item-hit',
    name: '`GET /v1/tasks/:id`, cached',
    about: 'one task, answered from the in-process cache (X-Cache: hit-local)',
    count: 4000,
    concurrency: 16,
    warmup: 1000,
    status: 200,
    cache: 'hit-local',
    load: (ctx) => ({ headers: bearer(ctx), paths: [`/v1/tasks/${ctx.hotId}`] }),
  },
  {
    key: 'list-hit',
    name: '`GET /v1/tasks?limit=20`, cached',
    about: 'the first page of 20, from the in-process cache',
    count: 3000,
    concurrency: 16,
    warmup: 600,
    status: 200,
    cache: 'hit-local',
    load: (ctx) => ({ headers: bearer(ctx), paths: ['/v1/tasks?limit=20'] }),
  },
  {
    key: 'whoami',
    name: '`GET /v1/auth/whoami`, API key',
    about: 'API key (cached verification), rate limit, a constant answer: the pipeline alone',
    count: 4000,
    concurrency: 16,
    warmup: 1000,
    status: 200,
    load: (ctx) => ({ headers: { 'x-api-key': ctx.apiKey }, paths: ['/v1/auth/whoami'] }),
  },
  {
    key: 'item-miss',
    name: '`GET /v1/tasks/:id`, cache miss',
    about:
      'a task not read before (a distinct id per request): in-process miss, Redis GET miss, ' +
      'the row from Postgres, Redis SET',
    count: 2000,
    concurrency: 16,
    warmup: 300,
    status: 200,
    cache: 'miss',
    readTx: 1,
    load: (ctx, n) => ({ headers: bearer(ctx), paths: ctx.take(n).map((id) => `/v1/tasks/${id}`) }),
  },
  {
    key: 'list-miss',
    name: '`GET /v1/tasks?limit=20`, cache miss',
    about:
      'the first page made a new cache key by a distinct `dueBefore` far in the future per ' +
      'request (it leaves out the tasks without a due date, 1 in 5; the same index scan)',
    count: 2000,
    concurrency: 16,
    warmup: 300,
    status: 200,
    cache: 'miss',
    readTx: 1,
    load: (ctx, n) => ({ headers: bearer(ctx), paths: Array.from({ length: n }, coldListPath) }),
  },
  {
    key: 'login',
    name: '`POST /v1/auth/login`',
    about: 'scrypt (N = 2¹⁵, r = 8) of the password, a refresh token stored, a token pair',
    count: 60,
    concurrency: 4,
    warmup: 6,
    status: 200,
    load: (ctx) => ({
      method: 'POST',
      headers: json,
      paths: ['/v1/auth/login'],
      body: JSON.stringify({ email: ctx.email, password: PASSWORD }),
    }),
  },
  {
    key: 'post',
    name: '`POST /v1/tasks`',
    about: 'a task and its task.created event in one transaction; the worker relays the event',
    count: 2000,
    concurrency: 8,
    warmup: 200,
    status: 201,
    load: (ctx) => ({
      method: 'POST',
      headers: { ...bearer(ctx), ...json },
      paths: ['/v1/tasks'],
      body: JSON.stringify({
        title: 'Capacity task {i}',
        description: 'Created by npm run bench:capacity',
        priority: 'high',
        tags: ['bench', 'capacity'],
      }),
    }),
  },
  {
    key: 'patch',
    name: '`PATCH /v1/tasks/:id`',
    about: 'a new title for a distinct task per request, unconditional; its task.updated event',
    count: 2000,
    concurrency: 8,
    warmup: 200,
    status: 200,
    load: (ctx, n) => ({
      method: 'PATCH',
      headers: { ...bearer(ctx), ...json },
      paths: ctx.take(n).map((id) => `/v1/tasks/${id}`),
      body: JSON.stringify({ title: 'Renamed by the capacity run {i}' }),
    }),
  },
];

// ---------------------------------------------------------------------------------------------
// Processes

class CapacityError extends Error {}
const log = (message) => process.stdout.write(`[capacity] ${message}\n`);
const loud = (lines) => process.stdout.write(`\n!!! ${lines.join('\n!!! ')}\n\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const children = new Set();
let interrupted = false;

function spawnTracked(command, args, options) {
  if (interrupted) throw new CapacityError('interrupted');
  const child = spawn(command, args, { cwd: ROOT, ...options });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

const running = (child) => child.exitCode === null && child.signalCode === null;

/** Runs to completion; resolves with the exit code and output. */
function run(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawnTracked(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A long-running process pinned to `cpu`, its output to bench/.run/<name>.log. */
function startPinned(name, cpu, args, env = process.env) {
  const fd = fs.openSync(path.join(RUN_DIR, `${name}.log`), 'w');
  try {
    const child = spawnTracked('taskset', ['-c', cpu, ...args], { env, stdio: ['ignore', fd, fd] });
    child.logName = name;
    return child;
  } finally {
    fs.closeSync(fd);
  }
}

async function stop(child) {
  if (!child || !running(child)) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  if ((await Promise.race([gone, sleep(10_000).then(() => 'late')])) === 'late') {
    child.kill('SIGKILL');
    await gone;
  }
}

async function freePort(preferred) {
  for (let port = preferred; port < preferred + 100; port += 1) {
    if (await portIsFree(port)) return port;
  }
  throw new CapacityError(`no free port in ${preferred}-${preferred + 99}`);
}

async function untilReady(child, check) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!running(child)) break;
    if (await check().catch(() => false)) return;
    await sleep(250);
  }
  const logFile = path.join(RUN_DIR, `${child.logName}.log`);
  const tail = fs.readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-20).join('\n');
  throw new CapacityError(`${child.logName} did not get ready; the end of its log:\n${tail}`);
}

const answers200 = (url) => async () =>
  (await fetch(url, { signal: AbortSignal.timeout(2000) })).status === 200;

async function call(url, { method = 'GET', headers = {}, body } = {}) {
  const response = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(5000) });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text };
}

// ---------------------------------------------------------------------------------------------
// Counters

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

/** Per-second rates of an idle window. */
function rates(d) {
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

// ---------------------------------------------------------------------------------------------
// Set-up

async function build() {
  log('building the apps (npm run build)...');
  const result = await run('npm', ['run', 'build']);
  fs.writeFileSync(path.join(RUN_DIR, 'capacity-build.log'), result.stdout + result.stderr);
  if (result.code !== 0) {
    throw new CapacityError('npm run build failed: see bench/.run/capacity-build.log');
  }
}

const dropDatabase = () =>
  withPg(PG_ADMIN_URL, (pg) => pg.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`));

async function startRedis(s) {
  const port = await freePort(PORTS.redis);
  log(`starting a redis-server of our own on :${port}, pinned to core ${LOAD_CPU}...`);
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  s.redisServer = startPinned('capacity-redis', LOAD_CPU, ['redis-server', ...args]);
  s.redisUrl = `redis://127.0.0.1:${port}`;
  const Redis = require('ioredis');
  s.redis = new Redis(s.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  s.redis.on('error', () => undefined);
  await untilReady(s.redisServer, async () => {
    if (s.redis.status !== 'ready') await s.redis.connect();
    return (await s.redis.ping()) === 'PONG';
  });
}

function appEnv(s) {
  return {
    ...process.env,
    NODE_ENV: 'production',
    LOG_LEVEL: 'info',
    JWT_SECRET: s.secret,
    WEBHOOK_SECRETS_KEY: s.secret,
    DATABASE_URL,
    REDIS_URL: s.redisUrl,
    REDIS_KEY_PREFIX: 'taskhub-capacity:',
    RABBITMQ_URL,
    RABBITMQ_QUEUE_PREFIX: QUEUE_PREFIX,
  };
}

async function startApi(s) {
  const port = await freePort(PORTS.api);
  log(`starting the api on :${port}, pinned to core ${SERVER_CPU} (production, log level info)...`);
  const env = { ...appEnv(s), PORT: String(port) };
  s.api = startPinned('capacity-api', SERVER_CPU, ['node', ...NODE_RUNTIME_FLAGS, API_ENTRY], env);
  s.apiUrl = `http://127.0.0.1:${port}`;
  await untilReady(s.api, answers200(`${s.apiUrl}/health/ready`));
}

async function startWorker(s) {
  const port = await freePort(PORTS.worker);
  log(`starting the worker on :${port}, pinned to core ${LOAD_CPU}...`);
  const env = { ...appEnv(s), WORKER_PORT: String(port) };
  const args = ['node', ...NODE_RUNTIME_FLAGS, WORKER_ENTRY];
  s.worker = startPinned('capacity-worker', LOAD_CPU, args, env);
  s.workerUrl = `http://127.0.0.1:${port}`;
  await untilReady(s.worker, answers200(`${s.workerUrl}/health/ready`));
}

/**
 * One user (registered through the api), an API key, the overrides that admit the load, and
 * enough tasks by SQL for every distinct-id run; ctx.take(n) hands out ids never handed before.
 */
async function seed(s, tasks) {
  log(`seeding: one user, an API key, ${tasks} tasks...`);
  const email = `capacity-${Date.now()}@example.com`;
  const registered = await call(`${s.apiUrl}/v1/auth/register`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ email, password: PASSWORD, name: 'Capacity' }),
  });
  if (registered.status !== 201) throw new CapacityError(`register: ${registered.body}`);
  const { accessToken: token, user } = JSON.parse(registered.body);
  const created = await call(`${s.apiUrl}/v1/api-keys`, {
    method: 'POST',
    headers: { ...json, authorization: `Bearer ${token}` },
    body: JSON.stringify({ name: 'capacity', scopes: ['tasks:read', 'tasks:write'] }),
  });
  if (created.status !== 201) throw new CapacityError(`api key: ${created.body}`);
  const key = JSON.parse(created.body);
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
  const ctx = { email, token, userId: user.id, apiKey: key.key, hotId: ids.pop() };
  ctx.take = (n) => {
    if (ids.length < n) throw new CapacityError('not enough seeded tasks');
    return ids.splice(0, n);
  };
  // Overrides are read every 500 ms by each instance: wait until all three apply.
  const applied = async (url, options) =>
    (await call(url, options)).headers
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
    if (Date.now() > deadline) throw new CapacityError('the rate-limit overrides never applied');
    await sleep(200);
  }
}

// ---------------------------------------------------------------------------------------------
// Load

/** Sends `n` requests of `type` from the load core (this file's `load` mode); checks the answers. */
async function send(s, ctx, type, n) {
  const spec = { method: 'GET', ...type.load(ctx, n), base: s.apiUrl, count: n };
  spec.concurrency = type.concurrency;
  const file = path.join(RUN_DIR, 'capacity-load.json');
  fs.writeFileSync(file, JSON.stringify(spec));
  const result = await run('taskset', ['-c', LOAD_CPU, 'node', __filename, 'load', file]);
  if (result.code !== 0) throw new CapacityError(`the load client failed: ${result.stderr}`);
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

// ---------------------------------------------------------------------------------------------
// Ceilings

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
    throw new CapacityError(`redis-benchmark ${label}: ${result.stderr || result.stdout}`);
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
      ...[String(OVERRIDE_PER_MINUTE), '60000', '0'],
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
    spawnTracked(
      'taskset',
      ['-c', LOAD_CPU, 'redis-cli', '-u', s.redisUrl, 'subscribe', 'capacity:bump'],
      {
        stdio: 'ignore',
      },
    ),
  );
  try {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while ((await s.redis.pubsub('NUMSUB', 'capacity:bump'))[1] < 20) {
      if (Date.now() > deadline) throw new CapacityError('redis-cli subscribers did not subscribe');
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
    if (result.code !== 0 || !found) throw new CapacityError(`pgbench ${name}: ${result.stderr}`);
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
    if (!batch) throw new CapacityError('no request-log batch came to weigh');
    const entries = JSON.parse(JSON.parse(batch.content.toString()).data.entries).length;
    return { event: Buffer.byteLength(event), batch: batch.content.length, entries };
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** This file's `rabbit` mode, pinned to the load core: persistent messages, confirms, acks. */
async function rabbitCeiling(size) {
  log(`RabbitMQ ceiling: ${size} B persistent messages, confirmed, consumed with acks...`);
  const spec = { queue: `${QUEUE_PREFIX}capacity-ceiling`, size, seconds: 4, inFlight: 100 };
  const result = await run('taskset', [
    ...['-c', LOAD_CPU, 'node', __filename, 'rabbit', JSON.stringify(spec)],
  ]);
  if (result.code !== 0) throw new CapacityError(`the RabbitMQ ceiling failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

// ---------------------------------------------------------------------------------------------
// The model

/** The shares of the request types in a mix. */
function sharesOf(mix) {
  return {
    'item-hit': mix.items * HIT_RATIO,
    'item-miss': mix.items * (1 - HIT_RATIO),
    'list-hit': mix.lists * HIT_RATIO,
    'list-miss': mix.lists * (1 - HIT_RATIO),
    post: mix.writes / 2,
    patch: mix.writes / 2,
  };
}

const positive = (v) => Math.max(0, v);

/** A figure of the mix: the request types' figures weighted by their shares. */
const weighted = (mix, m) => (field) =>
  Object.entries(sharesOf(mix)).reduce((sum, [key, share]) => sum + share * field(m.costs[key]), 0);

/** What one node of each part, as measured here, carries of the mix (req/s). */
function perNode(mix, m) {
  const per = weighted(mix, m);
  const { postgres: pg, rabbit } = m.ceilings;
  const pgCore = 1e6 / per((c) => positive(c.pgUs));
  return {
    api: 1e6 / per((c) => c.apiUs),
    redis: 1e6 / per((c) => positive(c.redisUs)),
    pgCore,
    pgCores: Math.max(pg.read.cores, pg.write.cores),
    pg: Math.min(
      pgCore * Math.max(pg.read.cores, pg.write.cores),
      pg.write.tps / (mix.writes + 1 / m.logBatchSize),
    ),
    rabbit:
      1 /
      (per((c) => positive(c.events)) / rabbit.event.rate + 1 / m.logBatchSize / rabbit.batch.rate),
  };
}

function fleet(mix, rate, m) {
  const per = weighted(mix, m);
  const apiCores = (rate * per((c) => c.apiUs)) / 1e6 / TARGET_UTILISATION;
  const workerCores = (rate * per((c) => positive(c.workerUs))) / 1e6 / TARGET_UTILISATION;
  const apis = Math.ceil(apiCores);
  const workers = Math.ceil(workerCores);
  const writes = rate * mix.writes;
  // Each write's cache invalidation is published to every api instance; one was measured.
  const redisUs =
    rate * per((c) => positive(c.redisUs)) +
    apis * Math.max(0, m.idleApi.values.redisUs - m.redisAloneUs) +
    writes * (apis - 1) * m.ceilings.redis.deliveryUs;
  const redisCommands = rate * per((c) => positive(c.redisCommands)) + apis * m.idleApi.commands;
  const decisions = rate;
  // Postgres: its CPU, against the cores it kept busy at saturation here; and the commits that
  // write (each write request's transaction, each request-log batch's), against the POST's.
  const pg = m.ceilings.postgres;
  const isMiss = (c) => (c.type.readTx ?? 0) > 0;
  const tx = rate * per((c) => positive(c.tx)) + apis * m.idleApi.tx + workers * m.idleWorkerTx;
  const missTx = rate * per((c) => (isMiss(c) ? positive(c.tx) : 0));
  const pgCores =
    (rate * per((c) => positive(c.pgUs)) + apis * positive(m.idleApi.values.pgUs)) / 1e6;
  const missCores = (rate * per((c) => (isMiss(c) ? positive(c.pgUs) : 0))) / 1e6;
  const batches = rate / m.logBatchSize;
  const commits = writes + batches;
  const capacity = Math.max(pg.read.cores, pg.write.cores);
  const primary = Math.max(pgCores / capacity, commits / pg.write.tps);
  const primaryWithReplicas = Math.max((pgCores - missCores) / capacity, commits / pg.write.tps);
  const events = rate * per((c) => positive(c.events));
  const load = {
    Redis: redisUs / 1e6,
    'Postgres primary': primary,
    RabbitMQ: events / m.ceilings.rabbit.event.rate + batches / m.ceilings.rabbit.batch.rate,
  };
  const first = Object.entries(load).sort((a, b) => b[1] - a[1])[0][0];
  return {
    ...{ rate, apiCores, apis, workerCores, workers, redisUs, redisCommands, decisions },
    ...{ tx, missTx, pgCores, missCores, commits, primary, primaryWithReplicas, events, batches },
    ...{ load, first },
  };
}

const NEXT_STEP = {
  Redis:
    'Redis Cluster: the rate limiter and cache keys are per client and per owner, so they shard ' +
    'by hash slot as they are (each script touches one key); the cache invalidation channel ' +
    'becomes sharded pub/sub (SPUBLISH, Redis 7) or per-shard channels, since a plain PUBLISH ' +
    'reaches every instance through every node.',
  'Postgres primary':
    'read replicas (`DATABASE_REPLICA_URLS`) take the cache misses (the "of which" above); the ' +
    'writes stay on the primary: a larger one (cores; faster WAL storage, as every write ' +
    'commits with fsync), then tasks and the outbox partitioned by owner over several primaries ' +
    "(a write touches one owner's rows). Per write, the worker's fan-out of its event is a " +
    'transaction of its own even for an owner without webhooks: knowing which owners have ' +
    'webhooks would save it.',
  RabbitMQ:
    'more nodes with the queues spread over them (a queue lives on one node: split task-events ' +
    'by owner into several queues, as quorum queues for replication), and larger request-log ' +
    'batches (`REQUEST_LOG_BATCH_SIZE`).',
};

// ---------------------------------------------------------------------------------------------
// The report

const n0 = (v) => Math.round(v).toLocaleString('en-US').replaceAll(',', ' ');
const fix = (v, digits) =>
  Math.abs(v) < 0.5 * 10 ** -digits ? (0).toFixed(digits) : v.toFixed(digits);
const range = (a, b, digits) => {
  const [low, high] = [fix(Math.min(a, b), digits), fix(Math.max(a, b), digits)];
  return low === high ? low : `${low}–${high}`;
};
const pct = (v) => `${(v * 100).toFixed(0)} %`;
const table = (head, rows) =>
  [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i ? '---:' : '---')).join('|')}|`]
    .concat(rows.map((row) => `| ${row.join(' | ')} |`))
    .join('\n');

function costTable(m) {
  return table(
    [
      'request',
      'api CPU µs',
      'worker CPU µs',
      'PG tx',
      'PG CPU µs',
      'Redis commands',
      'Redis CPU µs',
      'RabbitMQ messages',
    ],
    m.measured.map(({ type, cost: c }) => [
      type.name,
      fix(c.apiUs, 0),
      fix(c.workerUs, 0),
      fix(c.tx, 3),
      fix(c.pgUs, 0),
      fix(c.redisCommands, 2),
      fix(c.redisUs, 1),
      `${fix(c.messages, 4)} (${fix(c.events, 3)} + ${fix(c.logBatches, 4)})`,
    ]),
  );
}

function commandTable(m) {
  return table(
    ['request', 'Redis commands per request (INFO commandstats; ≥ 0.01)'],
    m.measured.map(({ type, cost }) => [
      type.name,
      Object.entries(cost.byCommand)
        .filter(([, v]) => v >= 0.01)
        .sort((a, b) => b[1] - a[1])
        .map(([name, v]) => `${name.toUpperCase()} ${v.toFixed(2)}`)
        .join(', '),
    ]),
  );
}

function runTable(m) {
  return table(
    ['request', 'requests', 'concurrency', 'seconds', 'req/s', 'answers', 'X-Cache'],
    m.measured.map(({ type, n, outcome: o }) => [
      type.name,
      String(n),
      String(type.concurrency),
      o.seconds.toFixed(1),
      n0(n / o.seconds),
      JSON.stringify(o.statuses).replace(/[{}"]/g, ''),
      JSON.stringify(o.cache).replace(/[{}"]/g, ''),
    ]),
  );
}

function idleTable(m) {
  const row = (label, r) => [
    label,
    fix(r.values.apiUs / 1e3, 1),
    fix(r.values.workerUs / 1e3, 1),
    fix(r.tx, 1),
    fix(r.commands, 1),
    fix(r.values.redisUs / 1e3, 2),
  ];
  return table(
    ['idle, per second', 'api CPU ms', 'worker CPU ms', 'PG tx', 'Redis commands', 'Redis CPU ms'],
    [
      ['redis-server alone', '', '', '', '', fix(m.redisAloneUs / 1e3, 2)],
      row('the api alone', m.idleApi),
      row('the api and the worker', m.idle),
      ['so the worker', '', '', fix(m.idleWorkerTx, 1), '', ''],
    ],
  );
}

function ceilingText(m) {
  const r = m.ceilings.redis;
  const redisRows = r.results.map((x) => [x.label, n0(x.rps), fix(x.us, 1), n0(1e6 / x.us)]);
  const pg = m.ceilings.postgres;
  const mq = m.ceilings.rabbit;
  return [
    table(
      ['Redis (one redis-server)', 'ops/s here', 'Redis CPU µs per op', 'ops/s of a whole core'],
      redisRows,
    ),
    '',
    'Redis runs commands on one thread: its ceiling is a core, the last column (a million µs over',
    'its CPU time per op). The ops/s measured here are less: redis-server shared its core with',
    'whatever else ran on it.',
    '',
    `One more subscriber costs Redis ${fix(r.deliveryUs, 2)} µs per PUBLISH (the difference of the two PUBLISH rows, over 20).`,
    '',
    table(
      [
        'Postgres 15 (fsync and synchronous_commit on)',
        'transactions/s',
        'backend CPU µs per tx',
        'backend cores busy',
      ],
      [
        ["the POST's transaction (INSERT task, INSERT outbox event)", pg.write],
        ["the cache miss's read (`GET /v1/tasks/:id`'s statement)", pg.read],
      ].map(([label, x]) => [label, n0(x.tps), fix(x.us, 0), x.cores.toFixed(2)]),
    ),
    '',
    "Postgres's ceiling in the model is both: its backends' CPU against the most cores they kept",
    'busy here (the larger of the two runs), and the commits that write against the first row.',
    '',
    table(
      ['RabbitMQ (persistent, publisher confirms, consumed with acks)', 'messages/s'],
      [
        [`${mq.event.size} B: a task event`, n0(mq.event.rate)],
        [
          `${mq.batch.size} B: a request-log batch (${mq.sizes.entries} entries, ${n0(mq.batch.size / mq.sizes.entries)} B each)`,
          n0(mq.batch.rate),
        ],
      ],
    ),
  ].join('\n');
}

function modelTables(m) {
  return m.models
    .map(({ mix, rows }) => {
      const shares = sharesOf(mix);
      const shareText = m.measured
        .filter(({ type }) => shares[type.key])
        .map(({ type }) => `${type.name} ${pct(shares[type.key])}`)
        .join(', ');
      const line = (label, f) => [label, ...rows.map(f)];
      const node = perNode(mix, m);
      return [
        `**${mix.label}**: ${pct(mix.items)} task reads, ${pct(mix.lists)} list pages, ${pct(mix.writes)} writes (half POST, half PATCH), reads ${pct(HIT_RATIO)} cache hits: ${shareText}.`,
        '',
        table(
          ['', ...rows.map((r) => `${n0(r.rate)} req/s`)],
          [
            line(
              `api cores at ${pct(TARGET_UTILISATION)} (one process each)`,
              (r) => `${r.apiCores.toFixed(1)} → ${r.apis}`,
            ),
            line(
              `worker cores at ${pct(TARGET_UTILISATION)}`,
              (r) => `${r.workerCores.toFixed(1)} → ${r.workers}`,
            ),
            line('Redis commands/s', (r) => n0(r.redisCommands)),
            line(
              'Redis: rate-limit decisions/s (share of a core of EVALSHA alone)',
              (r) =>
                `${n0(r.decisions)} (${pct((r.decisions * m.ceilings.redis.evalsha.us) / 1e6)})`,
            ),
            line('Redis: CPU of its one core', (r) => pct(r.load.Redis)),
            line(
              'Postgres transactions/s (of which cache-miss reads)',
              (r) => `${n0(r.tx)} (${n0(r.missTx)})`,
            ),
            line(
              'Postgres backend CPU, cores (of which cache misses)',
              (r) => `${r.pgCores.toFixed(1)} (${r.missCores.toFixed(1)})`,
            ),
            line(
              'Postgres commits that write, /s (share of the write ceiling)',
              (r) => `${n0(r.commits)} (${pct(r.commits / m.ceilings.postgres.write.tps)})`,
            ),
            line(
              'Postgres primary: share of its ceiling (no replicas → misses on replicas)',
              (r) => `${pct(r.primary)} → ${pct(r.primaryWithReplicas)}`,
            ),
            line(
              'RabbitMQ messages/s: events + log batches (share of its ceiling)',
              (r) => `${n0(r.events)} + ${n0(r.batches)} (${pct(r.load.RabbitMQ)})`,
            ),
            line('shares of the ceilings, highest first', (r) =>
              Object.entries(r.load)
                .sort((a, b) => b[1] - a[1])
                .map(([part, v], i) => (i === 0 ? `**${part} ${pct(v)}**` : `${part} ${pct(v)}`))
                .join(', '),
            ),
          ],
        ),
        '',
        `One node as measured here carries, of this mix: an api core ${n0(node.api)} req/s; ` +
          `Redis ${n0(node.redis)} req/s (its one thread; less the invalidations' fan-out to ` +
          `every api instance); the Postgres primary ${n0(node.pg)} req/s (${n0(node.pgCore)} ` +
          `per core of backend CPU, ${node.pgCores.toFixed(2)} cores here, or its write ` +
          `commits, whichever is less); RabbitMQ ${n0(node.rabbit)} req/s.`,
      ].join('\n');
    })
    .join('\n\n');
}

/** The explanatory part: what the figures say, and what to do at each scale. */
function explanation(m) {
  const cost = Object.fromEntries(m.measured.map(({ type, cost: c }) => [type.key, c]));
  const [low, high] = m.models[0].rows;
  const [lowW, highW] = m.models[1].rows;
  const pgHere = Math.max(m.ceilings.postgres.read.cores, m.ceilings.postgres.write.cores);
  const nodeRead = perNode(m.models[0].mix, m);
  const order = (r) =>
    Object.entries(r.load)
      .sort((a, b) => b[1] - a[1])
      .map(([part, v]) => `${part} ${pct(v)}`);
  const atScales = SCALES.map((rate, i) => {
    const each = m.models.map(({ mix, rows }) => `${mix.label}: ${order(rows[i]).join(' > ')}`);
    return `- At **${n0(rate)} req/s**, ${each.join('; ')}.`;
  }).join('\n');
  const steps = Object.entries(high.load)
    .sort((a, b) => b[1] - a[1])
    .map(([part]) => `- **${part}**: ${NEXT_STEP[part]}`)
    .join('\n');
  const login = cost.login.apiUs;
  return `### Capacity model

\`npm run bench:capacity\` (bench/capacity.js, ${Math.ceil(Number(m.meta.minutes))} minutes) measures what one request of each
type costs every part, on the built api and worker as deployed (production, rate limiting with
the bench user's override, cache, request log, a worker draining the outbox and the log), and
the single-node ceilings of Redis, Postgres and RabbitMQ on this machine; bench/CAPACITY.md has
the figures, the method and this model, recomputed by each run. The ceilings are those of one
node sharing **2 cores** with everything else (api, worker, load, other tenants): real servers
are faster; what carries over is the ratios, and which part gives first.

What a request costs (run of ${m.meta.date.slice(0, 10)}; CPU in µs, per request):

${costTable(m)}

The RabbitMQ column is messages consumed by the worker: task events plus request-log batches
(one message carries up to ${m.logBatchSize} requests, so its share per request falls as an
instance gets busier; the model takes 1/${m.logBatchSize}). Redis commands are as Redis counts
them, the commands a script runs included: a rate-limit decision is one EVALSHA and its TIME,
HGETALL, HINCRBY and PEXPIRE. Every request makes exactly one decision.

- The api's CPU is the cost that scales with traffic: a cached read ${fix(cost['item-hit'].apiUs, 0)} µs,
  a miss ${fix(cost['item-miss'].apiUs, 0)} µs, a write ${range(cost.post.apiUs, cost.patch.apiUs, 0)} µs, the bare
  pipeline (\`whoami\`) ${fix(cost.whoami.apiUs, 0)} µs. A login is ${fix(login / 1000, 0)} ms of scrypt:
  100 logins a second take ${fix((100 * login) / 1e6, 1)} cores by themselves.
- Every request, cached or not, costs Redis one rate-limit decision (${fix(m.ceilings.redis.evalsha.us, 0)} µs of
  Redis's one thread at saturation, ${n0(1e6 / m.ceilings.redis.evalsha.us)} a second on a whole core): one
  Redis bounds the whole fleet, whatever the hit ratio.
- Only cache misses and writes reach Postgres; a write is ${range(cost.post.tx, cost.patch.tx, 1)}
  transactions with the worker's (the api's, the event's fan-out, its share of relay passes).

With the **read-heavy** mix (${pct(m.models[0].mix.items)} task reads, ${pct(m.models[0].mix.lists)} list pages,
${pct(m.models[0].mix.writes)} writes, reads ${pct(HIT_RATIO)} cache hits), 10 000 req/s take
**${low.apis} api cores** at ${pct(TARGET_UTILISATION)} and ${low.workers} worker core(s); 100 000 req/s
take **${high.apis} api cores** and ${high.workers} worker cores (the write-heavy mix: ${highW.apis} and ${highW.workers}).
The shared parts, as shares of the single-node ceilings measured here:

${modelTables(m)}

Which part gives first, as shares of one node's ceilings measured here (over 100 %: one such
node no longer suffices):

${atScales}

Postgres's share is against the ${pgHere.toFixed(2)} cores its backends kept busy here (pgbench and
the other tenants had the rest): in cores, the primary needs ${low.pgCores.toFixed(1)} at 10 000 req/s of the read-heavy mix and
${high.pgCores.toFixed(1)} at 100 000 (the write-heavy mix: ${lowW.pgCores.toFixed(1)} and ${highW.pgCores.toFixed(1)}), of which the cache misses, which
replicas can take, are ${low.missCores.toFixed(1)} and ${high.missCores.toFixed(1)}. A primary with more cores moves it back; Redis
cannot move: its commands run on one thread, so past ${n0(nodeRead.redis)} req/s of the read-heavy mix it
must be sharded, whatever the machine. Per write, Postgres spends
${range(cost.post.pgUs, cost.patch.pgUs, 0)} µs of backend CPU (the api's transaction, the worker's fan-out and relay),
against ${fix(m.ceilings.postgres.write.us, 0)} µs for the POST's two INSERTs as pgbench sends them (prepared, in one
transaction). That gap (the worker's fan-out transaction, TypeORM's statements, unnamed and so
parsed and planned on every call, the PATCH's reads of the row) is capacity to win before any is
bought.

The next step for each, in the order they give at 100 000 req/s:

${steps}

Not in the model: logins (above), webhook deliveries (each subscriber adds a delivery job, a
message and an outbound POST per event, measured by \`npm run bench\`), exports, and the api-side
cost of hearing every write's invalidation (each instance hears all of them, one small message
each). The api cores assume one Node process per core, each loaded to ${pct(TARGET_UTILISATION)}.
`;
}

async function writeReport(m) {
  const problems = m.measured.flatMap(({ type, outcome }) =>
    outcome.problems.map((p) => `- ${type.name}: ${p}`),
  );
  const text = `# Capacity

> Generated by \`npm run bench:capacity\` (bench/capacity.js); this file is overwritten by each
> run. Absolute figures drift between runs on these shared machines; the model's conclusions
> are what to read.

- Date: ${m.meta.date}; commit ${m.meta.commit}; the run took ${m.meta.minutes} min
- Node ${process.version}, \`nproc\` = ${os.cpus().length}, ${os.cpus()[0]?.model ?? 'unknown CPU'}
- Load average (1, 5, 15 min) before: ${m.meta.loadBefore}; after: ${m.meta.loadAfter}
- ${m.meta.versions}
- BENCH_CAPACITY_SCALE=${m.meta.scale}
${problems.length ? `\n## Problems\n\n${problems.join('\n')}\n` : ''}
${explanation(m)}
## The runs

${runTable(m)}

Request types:

${m.measured.map(({ type }) => `- ${type.name}: ${type.about}`).join('\n')}

Redis commands by request type:

${commandTable(m)}

## Idle costs

What the api and the worker cost by themselves (subtracted from every figure above; in the
model, added per instance):

${idleTable(m)}

The api re-reads the rate-limit overrides every 500 ms and the flags every second, and pings
its two subscribed Redis connections every 100 ms; the worker's outbox relay polls every
\`OUTBOX_POLL_MS\` (200 ms) and counts its backlog every second.

## Ceilings

Single-node, on this shared 2-core machine, with the api and worker stopped:

${ceilingText(m)}

## Method

- The api (\`dist/apps/api\`, \`NODE_ENV=production\`, \`LOG_LEVEL=info\`: one access-log line per
  request, to a file) pinned to core ${SERVER_CPU}; the worker, our own redis-server and the
  load client pinned to core ${LOAD_CPU}; Postgres and RabbitMQ, shared with the machine, not
  pinned. A fresh database \`${DATABASE}\` and queues \`${QUEUE_PREFIX}*\`, dropped and deleted
  after the run.
- Each type: a warm-up pass of every type first (writes first), then, per type, a fixed number
  of requests at a fixed concurrency from a keep-alive client (this file's \`load\` mode);
  every answer must have the type's status, and the cached and miss types their X-Cache.
- After a type's requests, the worker must have drained (its \`jobs_processed_total\` steady for
  a second, \`outbox_pending\` 0, after the api's request-log flush interval). CPU is the
  threads' on-CPU time from \`/proc/<pid>/task/<tid>/schedstat\` (api, worker, redis-server, and
  every client backend of the database: not autovacuum, which comes when it will, nor the WAL
  writer or checkpointer). Redis commands are \`INFO commandstats\` deltas (our own INFO calls left
  out). Postgres transactions are \`xact_commit + xact_rollback\` of the database, read
  ${STATS_SETTLE_MS / 1000} s after the drain (backends publish their counts at most once a second,
  and an idle one only after 10 s).
- From every delta, the idle rate (measured over ${IDLE_MS / 1000} s with the api and the worker
  up and nothing sent) times the delta's duration is subtracted; so the figures are marginal
  costs, and can come out slightly negative where a type costs a part nothing.
- Ceilings: \`redis-benchmark -c 50\` (pinned to core ${LOAD_CPU}; redis-server moved to core
  ${SERVER_CPU}), with the sliding-window script of the build over 1 000 keys of 60 live slots,
  GET and SET of the size of a cached task, PUBLISH with no and 20 subscribers
  (\`redis-cli subscribe\`); \`pgbench -M prepared -c 10 -T 8\` of the POST's two INSERTs in a
  transaction (with a real task.created payload) and of the read by id and owner (the build's
  statement); an amqplib publisher on a confirm channel (persistent, ${m.ceilings.rabbit.event.inFlight} unconfirmed at most)
  and a consumer with acks and prefetch 20 on a queue of our own, for ${m.ceilings.rabbit.event.seconds} s, with messages
  of the size of a task event and of a request-log batch (one of each weighed in this run).
- The model: per request type, the measured costs; per mix, their weighted sum times the rate;
  api and worker cores at ${pct(TARGET_UTILISATION)}; per api instance, its idle Postgres reads and
  Redis commands; per write, one more PUBLISH delivery per api instance beyond the first.
  Postgres's share is the larger of its backends' CPU over the cores they kept busy in the
  pgbench runs and its commits that write over the POST transaction's ceiling; Redis's is its
  CPU over one core; RabbitMQ's is task events over the ceiling for their size plus request-log
  batches (1 per ${m.logBatchSize} requests) over the ceiling for theirs.
`;
  const prettier = require('prettier');
  const options = (await prettier.resolveConfig(OUTPUT)) ?? {};
  fs.writeFileSync(OUTPUT, await prettier.format(text, { ...options, filepath: OUTPUT }));
}

// ---------------------------------------------------------------------------------------------
// Main

const state = {};

async function deleteQueues() {
  const { loadConfig } = require(path.join(DIST, 'worker/libs/config/src/config.js'));
  const { QUEUES, queueName } = require(
    path.join(DIST, 'worker/libs/messaging/src/rmq-options.js'),
  );
  const topology = require(path.join(DIST, 'worker/libs/messaging/src/topology.js'));
  const config = loadConfig({ RABBITMQ_QUEUE_PREFIX: QUEUE_PREFIX });
  const amqp = require('amqplib');
  const connection = await amqp.connect(RABBITMQ_URL);
  try {
    const channel = await connection.createChannel();
    for (const queue of Object.values(QUEUES)) {
      const declared = topology.queueDeclarations(
        topology.jobQueueTopology(config, queueName(config, queue)),
      );
      for (const { queue: name } of declared) await channel.deleteQueue(name);
    }
  } finally {
    await connection.close().catch(() => undefined);
  }
}

let cleaning;
function cleanup() {
  cleaning ??= (async () => {
    await Promise.all([stop(state.api), stop(state.worker)]);
    state.redis?.disconnect();
    await Promise.all([...children].map((child) => stop(child)));
    await state.admin?.end().catch(() => undefined);
    if (state.queues)
      await deleteQueues().catch((e) => log(`could not delete the queues: ${e.message}`));
    if (state.database)
      await dropDatabase().catch((e) => log(`could not drop ${DATABASE}: ${e.message}`));
  })();
  return cleaning;
}

function scaleKnob() {
  const text = (process.env.BENCH_CAPACITY_SCALE ?? '').trim();
  if (text === '') return 1;
  const scale = Number(text);
  if (!(scale > 0 && scale <= 10)) {
    throw new CapacityError(`BENCH_CAPACITY_SCALE must be a number in (0, 10], not "${text}"`);
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
  const meta = {
    date: new Date().toISOString(),
    commit: `${commit}${dirty ? ' (with uncommitted changes)' : ''}`,
    loadBefore: os
      .loadavg()
      .map((v) => v.toFixed(2))
      .join(', '),
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
  const quiet = [threadTimes(s.redisServer.pid), performance.now()];
  await sleep(5000);
  const redisAloneUs =
    spent(quiet[0], threadTimes(s.redisServer.pid)) / 1e3 / ((performance.now() - quiet[1]) / 1000);
  log(`creating a fresh database ${DATABASE}...`);
  state.database = true;
  await dropDatabase();
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
  meta.loadAfter = os
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(', ');
  meta.minutes = ((Date.now() - startedAt) / 60_000).toFixed(1);
  meta.versions += `, RabbitMQ ${ceilings.rabbit.event.version ?? 'unknown'}`;
  fs.writeFileSync(MEASUREMENTS, JSON.stringify(m, null, 1));
  await report(m);
  log(`wrote ${path.relative(ROOT, OUTPUT)} (${meta.minutes} min)`);
}

/** The model from the measurements, into bench/CAPACITY.md; `report` mode: from the last run's. */
async function report(m) {
  m.models = MIXES.map((mix) => ({ mix, rows: SCALES.map((rate) => fleet(mix, rate, m)) }));
  await writeReport(m);
  for (const { mix, rows } of m.models) {
    for (const r of rows) {
      log(
        `${mix.label} at ${n0(r.rate)} req/s: ${r.apis} api cores, Redis ${pct(r.load.Redis)}, ` +
          `Postgres primary ${pct(r.primary)}, RabbitMQ ${pct(r.load.RabbitMQ)}: ${r.first} first`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Child modes: the load client and the RabbitMQ ceiling, each run pinned to the load core.

function count(into, key) {
  into[key] = (into[key] ?? 0) + 1;
}

async function loadMode(file) {
  const spec = JSON.parse(fs.readFileSync(file, 'utf8'));
  const target = new URL(spec.base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.concurrency });
  const statuses = {};
  const cache = {};
  const one = (i) =>
    new Promise((resolve) => {
      const body =
        spec.body === undefined ? undefined : Buffer.from(spec.body.replaceAll('{i}', String(i)));
      const headers = { ...spec.headers, ...(body ? { 'content-length': body.length } : {}) };
      const request = http.request(
        {
          host: target.hostname,
          port: target.port,
          method: spec.method,
          path: spec.paths[i % spec.paths.length],
          headers,
          agent,
        },
        (response) => {
          response.resume();
          response.on('end', () => {
            count(statuses, response.statusCode);
            count(cache, response.headers['x-cache'] ?? 'none');
            resolve();
          });
        },
      );
      request.on('error', (error) => {
        count(statuses, error.code ?? 'error');
        resolve();
      });
      request.end(body);
    });
  let next = 0;
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: spec.concurrency }, async () => {
      while (next < spec.count) await one(next++);
    }),
  );
  const seconds = (performance.now() - startedAt) / 1000;
  agent.destroy();
  process.stdout.write(`${JSON.stringify({ seconds, statuses, cache })}\n`);
}

async function rabbitMode(spec) {
  const amqp = require('amqplib');
  const [publishing, consuming] = [
    await amqp.connect(RABBITMQ_URL),
    await amqp.connect(RABBITMQ_URL),
  ];
  try {
    const publisher = await publishing.createConfirmChannel();
    await publisher.assertQueue(spec.queue, { durable: true });
    await publisher.purgeQueue(spec.queue);
    const consumer = await consuming.createChannel();
    await consumer.prefetch(20);
    let consumed = 0;
    const { consumerTag } = await consumer.consume(spec.queue, (message) => {
      if (message === null) return; // cancelled
      consumed += 1;
      consumer.ack(message);
    });
    const body = Buffer.from(JSON.stringify({ data: 'x'.repeat(spec.size - 11) }));
    const publish = () =>
      new Promise((resolve, reject) =>
        publisher.sendToQueue(spec.queue, body, { persistent: true }, (error) =>
          error ? reject(error) : resolve(),
        ),
      );
    let published = 0;
    const startedAt = performance.now();
    const until = startedAt + spec.seconds * 1000;
    await Promise.all(
      Array.from({ length: spec.inFlight }, async () => {
        while (performance.now() < until) {
          await publish();
          published += 1;
        }
      }),
    );
    while (consumed < published && performance.now() < until + 30_000) await sleep(5);
    const seconds = (performance.now() - startedAt) / 1000;
    await consumer.cancel(consumerTag);
    await publisher.deleteQueue(spec.queue);
    const version = publishing.connection.serverProperties?.version;
    process.stdout.write(
      `${JSON.stringify({ ...spec, published, consumed, rate: consumed / seconds, version })}\n`,
    );
  } finally {
    await Promise.all([publishing.close(), consuming.close()].map((p) => p.catch(() => undefined)));
  }
}

if (process.argv[2] === 'report') {
  report(JSON.parse(fs.readFileSync(MEASUREMENTS, 'utf8'))).catch((error) => {
    process.stderr.write(`${error.stack}\n`);
    process.exit(1);
  });
} else if (process.argv[2] === 'load') {
  loadMode(process.argv[3]).catch((error) => {
    process.stderr.write(`${error.stack}\n`);
    process.exit(1);
  });
} else if (process.argv[2] === 'rabbit') {
  rabbitMode(JSON.parse(process.argv[3])).then(
    () => process.exit(0),
    (error) => {
      process.stderr.write(`${error.stack}\n`);
      process.exit(1);
    },
  );
} else {
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      interrupted = true;
      log(`${signal}: cleaning up...`);
      cleanup().finally(() => process.exit(130));
    });
  }
  process.once('exit', () => {
    for (const child of children) if (running(child)) child.kill('SIGKILL');
  });
  main()
    .then(
      () => 0,
      (error) => {
        if (interrupted) return 130;
        const message =
          error instanceof CapacityError ? error.message : (error.stack ?? String(error));
        process.stderr.write(`\n[capacity] the capacity run could not complete: ${message}\n`);
        return 1;
      },
    )
    .then(async (code) => {
      await cleanup();
      if (!interrupted) process.exit(code);
    });
}
