'use strict';

/**
 * `npm run bench`: builds the apps, starts the api in production mode on a fresh database, seeds
 * it, and loads each scenario with wrk, server pinned to core 0 and wrk to core 1 (as the project's
 * first measurements were made). Prints a table and the budget verdicts and writes bench/RESULTS.md.
 *
 * The measurements run in rounds (BENCH_ROUNDS, default 3): each round loads the baseline, then
 * each of the api's scenarios, so that other work on this shared machine hits all scenarios alike.
 * The table shows each scenario's median over the rounds, with the spread; ratios and budgets use
 * the medians.
 *
 * Exit status: 0 when the benchmark ran, even if a budget or a scenario failed (they are printed
 * loudly); 1 when it could not run (build, wrk, database, start-up...); 130 when interrupted.
 *
 * To add a scenario, add an object to SCENARIOS below.
 */
const { spawn } = require('node:child_process');
const { NODE_RUNTIME_FLAGS } = require('../scripts/runtime');
const { portIsFree, withPg } = require('./lib');
const { randomBytes } = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const RUN_DIR = path.join(__dirname, '.run');
const RESULTS_FILE = path.join(__dirname, 'RESULTS.md');
const API_ENTRY = path.join(ROOT, 'dist/apps/api/apps/api/src/main.js');
const WORKER_ENTRY = path.join(ROOT, 'dist/apps/worker/apps/worker/src/main.js');
const RECEIVER_SCRIPT = path.join(__dirname, 'receiver.js');
const REQUEST_SCRIPT = path.join(__dirname, 'request.lua');
const FIXED_RATE_SCRIPT = path.join(__dirname, 'fixed-rate.js');
const FLEET_SCRIPT = path.join(ROOT, 'scripts/fleet.js');

const PG_ADMIN_URL = 'postgres://postgres@localhost:5432/postgres';
const DATABASE = 'taskhub_bench';
const DATABASE_URL = `postgres://postgres@localhost:5432/${DATABASE}`;
/** The webhooks target's own database and queues: its worker relays and delivers only its work. */
const WEBHOOKS_DATABASE = 'taskhub_bench_webhooks';
const WEBHOOKS_DATABASE_URL = `postgres://postgres@localhost:5432/${WEBHOOKS_DATABASE}`;
const WEBHOOKS_QUEUE_PREFIX = 'taskhub-bench-webhooks.';
const BASELINE_PORT = 3991;
const SEED_PORT = 3989;
const WORKER_PORT = 3998;
const RECEIVER_PORT = 3997;
/** How long the webhooks target's worker may take to catch up before a scenario (else loudly). */
const DRAIN_TIMEOUT_MS = 180_000;
/**
 * The api as deployed, and variants from the same build that each switch one thing off, to
 * measure what it costs or saves. All run pinned to the same core; only one is loaded at a time.
 */
const TARGETS = {
  api: { port: 3990, env: {} },
  'api-unlimited': { port: 3992, env: { RATE_LIMIT_ENABLED: 'false' } },
  'api-uncached': { port: 3993, env: { CACHE_ENABLED: 'false' } },
  'api-unlogged': { port: 3995, env: { REQUEST_LOG_ENABLED: 'false' } },
  // The api as deployed behind nginx: scripts/fleet.js with `fleet` api instances and no worker
  // (nor has the `api` target one), the fleet process and all it starts pinned to the server
  // core, on the same database, Redis prefix and queues as `api`.
  'fleet-1': { port: 3980, env: {}, fleet: 1 },
  'fleet-2': { port: 3981, env: {}, fleet: 2 },
  'fleet-3': { port: 3982, env: {}, fleet: 3 },
  // Reaches Postgres through a FaultProxy that is cut once the api is up, which opens its postgres
  // breaker for the rest of the run (the longest reset timeout, 10 min: no probe meanwhile).
  'api-db-cut': {
    port: 3994,
    env: { BREAKER_POSTGRES_TIMEOUT_MS: '300', BREAKER_RESET_TIMEOUT_MS: '600000' },
    cutDatabase: true,
  },
  // With a worker of its own (pinned to the load's core: see startWorker), on a database
  // and queues of its own, delivering task.created webhooks to bench/receiver.js (on the load's
  // core): what a subscriber costs the writes.
  'api-webhooks': {
    port: 3996,
    env: {
      DATABASE_URL: WEBHOOKS_DATABASE_URL,
      RABBITMQ_QUEUE_PREFIX: WEBHOOKS_QUEUE_PREFIX,
      REDIS_KEY_PREFIX: 'taskhub-bench-webhooks:',
      WEBHOOK_ALLOW_HOSTS: '127.0.0.1',
    },
    worker: true,
  },
};
const SEED_TASKS = 1000;
/** The seeded user's and key's rate limit: far above what the load sends. */
const OVERRIDE_PER_MINUTE = 1_000_000_000;

const SERVER_CPU = '0';
const LOAD_CPU = '1';
const WRK_THREADS = 1;
const WRK_CONNECTIONS = 50;
const WARMUP_SECONDS = 3;
/** From round 2 on, the servers are warm already: a shorter warm-up before each measurement. */
const LATER_WARMUP_SECONDS = 2;
const DEFAULT_ROUNDS = 3;
const MEASURE_SECONDS = 8;
const READY_TIMEOUT_MS = 30_000;
/** A fleet starts its apis together on one core; the fleet itself gives each 120 s. */
const FLEET_READY_TIMEOUT_MS = 150_000;
/**
 * A fixed-rate scenario whose median latency is above this was queueing: warned about, since an
 * overloaded api spends more per request (more connections and requests in flight, load shedding).
 */
const BEHIND_P50_MS = 10;
/** Ratios are taken to this scenario's median req/s over the rounds. */
const RATIO_BASE = 'baseline';
/** Warn when the baseline's rounds differ by more than this (lowest to highest): the machine was busy. */
const BASELINE_MAX_SPREAD = 0.15;

/** What a budget's cpuParts may name: see `cpu` below. */
const CPU_PARTS = ['api', 'nginx', 'worker'];
/** The name of the cached read at 2 000 req/s through nginx in front of `apis` instances. */
const throughNginx = (apis) =>
  `GET /v1/tasks/:id at 2 000 req/s, nginx + ${apis} api${apis === 1 ? '' : 's'}`;
/** The cached read at 2 000 req/s, for the server's CPU per request: request, rate and checks. */
const CACHED_READ_AT_2000 = {
  method: 'GET',
  path: (ctx) => `/v1/tasks/${ctx.taskId}`,
  auth: true,
  cache: 'hit-local',
  rate: 2000,
};
/** That read through nginx, against the target fleet-<apis>. */
const cachedReadThroughNginx = (apis, fields) => ({
  name: throughNginx(apis),
  target: `fleet-${apis}`,
  ...CACHED_READ_AT_2000,
  ...fields,
});
/** The rate per api of the fleet scenarios that grow their load with the fleet. */
const PER_API_RATE = 300;
/** The cached read through nginx at PER_API_RATE per api, against the target fleet-<apis>. */
const perApiName = (apis) =>
  `GET /v1/tasks/:id at ${PER_API_RATE} req/s per api, nginx + ${apis} api${apis === 1 ? '' : 's'}`;
const cachedReadPerApi = (apis, fields) => ({
  name: perApiName(apis),
  target: `fleet-${apis}`,
  ...CACHED_READ_AT_2000,
  rate: PER_API_RATE * apis,
  ...fields,
});

/** The bare scenarios' names, which the api's budgets refer to. */
const BARE = {
  read: 'bare: JWT + pg read',
  page: 'bare: JWT + pg page of 20',
  create: 'bare: JWT + pg write (task + outbox)',
  update: 'bare: JWT + pg update (task + outbox)',
  remove: 'bare: JWT + pg delete (task + outbox)',
};
const SEED_STACK = 'seed-style stack: Express + jsonwebtoken + Redis cache-aside, warm';
/** How many tasks a DELETE scenario has to delete in one load run: more than it can. */
const DELETABLE_TASKS = 40_000;
const CREATE = {
  method: 'POST',
  path: '/v1/tasks',
  auth: true,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    title: 'Benchmark task',
    description: 'Created by npm run bench',
    priority: 'high',
    tags: ['bench', 'load'],
  }),
};
/** Over the seeded tasks, one after another (bench/rotate.lua), so that writers rarely wait on a row lock. */
const UPDATE = {
  method: 'PATCH',
  path: (ctx) => `/v1/tasks/${ctx.taskId}`,
  auth: true,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ title: 'Renamed by npm run bench' }),
  lua: 'rotate.lua',
  luaArgs: (ctx) => rotateArgs(ctx, ctx.seededIdsFile, 'PATCH', UPDATE.body),
};
/** Over tasks made for it before each load run (prepare), each deleted once. */
const REMOVE = {
  method: 'DELETE',
  path: (ctx) => `/v1/tasks/${ctx.deletable.probe}`,
  auth: true,
  prepare: (ctx) => makeDeletable(ctx),
  lua: 'rotate.lua',
  luaArgs: (ctx) => rotateArgs(ctx, ctx.deletable.file, 'DELETE', ''),
};

/**
 * The scenarios. In each round, those whose target is 'baseline' run first (the api idle), then the
 * api's (the baseline idle), in this order: put scenarios that write last, so the reads see the
 * seeded data only. Between rounds, the tasks created during the round are deleted (and the table
 * vacuumed), so every round starts from the seeded data.
 *
 *   name      shown in the table; budgets refer to it
 *   target    'baseline' (the bare server, bench/bare-server.js), 'api' (the api as
 *             deployed: rate limiting and cache on), 'api-unlimited' (the same build with
 *             RATE_LIMIT_ENABLED=false, to measure what the limiter costs) or 'api-uncached'
 *             (CACHE_ENABLED=false, to measure what the cache saves) or 'api-unlogged'
 *             (REQUEST_LOG_ENABLED=false, what the request log costs) or 'api-db-cut' (Postgres
 *             cut off, its breaker open) or 'api-webhooks' (with a worker and a webhook
 *             receiver, on a database of its own: ctx.webhooks has plainToken, subscribedToken)
 *             or 'fleet-1', 'fleet-2', 'fleet-3' (scripts/fleet.js: nginx in front of 1, 2 or 3
 *             apis configured as `api` is; the load goes to nginx)
 *   method    HTTP method
 *   path      a string, or (ctx) => string; ctx has taskId, token, apiKey, userId
 *   auth      true: sends "Authorization: Bearer <the seeded user's token>"
 *   headers   extra request headers: an object, or (ctx) => object
 *   body      request body (a string), or (ctx) => string
 *   rate      optional: requests per second. The load is then an open loop at that fixed rate
 *             (bench/fixed-rate.js) rather than wrk's 50 busy connections: for latency budgets,
 *             whose p99 under saturation would be queueing
 *   status    optional, with `rate` only: the HTTP status every answer must have (default: any
 *             2xx or 3xx)
 *   lua       optional: a wrk script of your own instead of bench/request.lua, with
 *   luaArgs   (ctx) => string[], passed after `--`
 *   budget    optional, one or a list: { label, minRatio, maxP99Ms } (minRatio: req/s relative to
 *             the baseline),
 *             or { label, relativeTo, minRatio, maxVerificationP99DeltaMs }: req/s relative to the
 *             scenario named `relativeTo`, and an API key's verification p99 at most this much
 *             above an access token's (bench/verification-cost.js, call by call),
 *             or { label, relativeTo, maxCpuRatio, cpuParts }: CPU per request relative to the
 *             scenario named `relativeTo`, summing on each side the parts
 *             listed in cpuParts (default ['api']); a part the reference does not have counts
 *             nothing there (a direct api has no nginx), the judged scenario must have them all,
 *             or { label, maxRedisPerRequest }: Redis commands per request at most this
 *   prepare   optional: async (ctx) => void, run before the probe and again before the measured
 *             run (a DELETE's tasks to delete)
 *
 * Every scenario measures the server's CPU time per request (user + system, from
 * /proc/<pid>/stat), in parts: `api` (the api process, all of a fleet's apis, or the bare
 * server's process) and `nginx` (a fleet's: the fleet process's descendants that are not apis,
 * nginx's master and worker); a target with a worker has a `worker` part too. At saturation
 * (wrk) the server's core is busy and its CPU per request is close to 1/req/s, unless something
 * else (Postgres) is the bottleneck; at a fixed rate it is what the rate costs. And the Redis
 * commands per request: the shared Redis's total_commands_processed over the run (the bench is
 * the only client making many).
 *   cache     optional: the X-Cache the api must answer after the warm-up (else the scenario fails)
 *   about     one line for RESULTS.md: what the scenario exercises
 */
const SCENARIOS = [
  // The bare equivalents (bench/bare-server.js): the same I/O as the api's routes, nothing else.
  // And the seed designs' stack (bench/seed-stack.js), loaded while the others are idle.
  {
    name: SEED_STACK,
    target: 'seed',
    method: 'GET',
    path: (ctx) => `/v1/tasks/${ctx.taskId}`,
    auth: true,
    about:
      'Express 5, jsonwebtoken, and the task from Redis (cache-aside, 60 s), as the seed ' +
      'designs drew the service',
  },
  {
    name: BARE.read,
    target: 'baseline',
    method: 'GET',
    path: (ctx) => `/v1/tasks/${ctx.taskId}`,
    auth: true,
    about: 'bare Fastify + fast-jwt + one prepared pg read of the task by id and owner',
  },
  {
    name: BARE.page,
    target: 'baseline',
    method: 'GET',
    path: '/v1/tasks?limit=20',
    auth: true,
    about: 'bare Fastify + fast-jwt + one prepared keyset page of 20 (newest first) by owner',
  },
  {
    name: BARE.create,
    target: 'baseline',
    ...CREATE,
    about: 'bare Fastify + fast-jwt + a transaction: the task row and its outbox row',
  },
  {
    name: BARE.update,
    target: 'baseline',
    ...UPDATE,
    about: "bare Fastify + fast-jwt + a transaction: the owner's row updated, an outbox row",
  },
  {
    name: BARE.remove,
    target: 'baseline',
    ...REMOVE,
    about: "bare Fastify + fast-jwt + a transaction: the owner's row deleted, an outbox row",
  },
  {
    name: 'baseline',
    target: 'baseline',
    method: 'GET',
    path: (ctx) => `/json/tasks/${ctx.taskId}`,
    about: 'bare Fastify 5, one GET route returning the same JSON body as GET /v1/tasks/:id',
  },
  {
    name: 'baseline (500 req/s)',
    target: 'baseline',
    method: 'GET',
    path: (ctx) => `/json/tasks/${ctx.taskId}`,
    rate: 500,
    about:
      'the baseline at the fixed rate of the latency scenarios below: the floor of what ' +
      'bench/fixed-rate.js measures on this machine (its own client and scheduling included)',
  },
  {
    name: 'GET /v1/auth/whoami',
    target: 'api',
    method: 'GET',
    path: '/v1/auth/whoami',
    auth: true,
    budget: [
      {
        label: "whoami: server CPU per request at most 2x bare Fastify's",
        relativeTo: 'baseline',
        maxCpuRatio: 2,
      },
      {
        label: 'authenticated read without database, rate limiter on vs off',
        relativeTo: 'GET /v1/auth/whoami (limiter off)',
        minRatio: 0.8,
      },
    ],
    about: 'JWT check, one rate-limit decision in Redis, and a constant-size answer, no database',
  },
  {
    name: 'GET /v1/auth/whoami (limiter off)',
    target: 'api-unlimited',
    method: 'GET',
    path: '/v1/auth/whoami',
    auth: true,
    about: 'the same on the api started with RATE_LIMIT_ENABLED=false',
  },
  {
    name: 'GET /v1/tasks/:id',
    target: 'api',
    method: 'GET',
    path: (ctx) => `/v1/tasks/${ctx.taskId}`,
    auth: true,
    budget: [
      {
        label: "GET /v1/tasks/:id from the in-process cache: CPU at most 2.5x bare Fastify's",
        relativeTo: 'baseline',
        maxCpuRatio: 2.5,
      },
      { label: 'GET /v1/tasks/:id from the in-process cache: p99 at 50 connections', maxP99Ms: 10 },
      {
        label:
          "GET /v1/tasks/:id from the in-process cache: CPU at most 1/8 the seed-style stack's",
        relativeTo: SEED_STACK,
        maxCpuRatio: 0.125,
      },
      {
        label: 'GET /v1/tasks/:id, a hot client: Redis commands per cached read',
        maxRedisPerRequest: 0.05,
      },
      {
        label: 'GET /v1/tasks/:id, cached vs uncached',
        relativeTo: 'GET /v1/tasks/:id (cache off)',
        minRatio: 3,
      },
      {
        label: 'GET /v1/tasks/:id, rate limiter on vs off',
        relativeTo: 'GET /v1/tasks/:id (limiter off)',
        minRatio: 0.8,
      },
      {
        label: 'GET /v1/tasks/:id, request log on vs off',
        relativeTo: 'GET /v1/tasks/:id (request log off)',
        minRatio: 0.95,
      },
    ],
    cache: 'hit-local',
    about: 'JWT check, rate limit, the task from the in-process cache (X-Cache: hit-local), ETag',
  },
  {
    name: 'GET /v1/tasks/:id (limiter off)',
    target: 'api-unlimited',
    method: 'GET',
    path: (ctx) => `/v1/tasks/${ctx.taskId}`,
    auth: true,
    about: 'the same on the api started with RATE_LIMIT_ENABLED=false',
  },
  {
    name: 'GET /v1/tasks/:id at 2 000 req/s',
    target: 'api',
    ...CACHED_READ_AT_2000,
    budget: {
      label: 'request log cost: server CPU per cached read, on vs off',
      relativeTo: 'GET /v1/tasks/:id at 2 000 req/s (request log off)',
      maxCpuRatio: 1.05,
    },
    about:
      "the cached read at a fixed rate, for the api process's own CPU time per request (from " +
      '/proc): a steadier measure of a cost than req/s under wrk on a shared machine',
  },
  {
    name: 'GET /v1/tasks/:id at 2 000 req/s (request log off)',
    target: 'api-unlogged',
    ...CACHED_READ_AT_2000,
    about: 'the same on the api started with REQUEST_LOG_ENABLED=false',
  },
  cachedReadThroughNginx(1, {
    about:
      'the same cached read through nginx (scripts/fleet.js, nginx/taskhub.conf.template) in ' +
      'front of one api configured as `api` is, all pinned to the server core: CPU per request ' +
      "of the api, then of nginx's master and worker. The reference of the fleet budgets",
  }),
  cachedReadThroughNginx(2, {
    budget: [
      {
        label:
          'through nginx with 2 api instances vs 1 instance direct: server CPU per cached read',
        relativeTo: 'GET /v1/tasks/:id at 2 000 req/s',
        maxCpuRatio: 1.3,
        cpuParts: ['api', 'nginx'],
      },
      {
        label: 'a fleet of 2 api instances vs 1 (both behind nginx): api CPU per cached read',
        relativeTo: throughNginx(1),
        maxCpuRatio: 1.1,
      },
    ],
    about:
      'the same through nginx in front of two apis (least_conn): CPU per request of both apis ' +
      'together, then of nginx; X-Cache checked on each api after the warm-up',
  }),
  cachedReadThroughNginx(3, {
    budget: {
      label: 'a fleet of 3 api instances vs 1 (both behind nginx): api CPU per cached read',
      relativeTo: throughNginx(1),
      maxCpuRatio: 1.1,
    },
    about: 'the same in front of three apis',
  }),
  // The same fleets with the load growing with them, so each api sees the same rate: a Node
  // process costs more per request at a lower rate (it sleeps and wakes for each), which the
  // fixed 2 000 req/s above charges to N; here only what N itself adds is left.
  cachedReadPerApi(1, {
    about: `the cached read through nginx in front of one api, at ${PER_API_RATE} req/s`,
  }),
  cachedReadPerApi(2, {
    budget: {
      label: 'a fleet of 2 api instances vs 1, the same rate per api: api CPU per cached read',
      relativeTo: perApiName(1),
      maxCpuRatio: 1.1,
    },
    about: `the same in front of two apis, at ${PER_API_RATE * 2} req/s`,
  }),
  cachedReadPerApi(3, {
    budget: {
      label: 'a fleet of 3 api instances vs 1, the same rate per api: api CPU per cached read',
      relativeTo: perApiName(1),
      maxCpuRatio: 1.1,
    },
    about: `the same in front of three apis, at ${PER_API_RATE * 3} req/s`,
  }),
  {
    name: 'GET /v1/tasks/:id (request log off)',
    target: 'api-unlogged',
    method: 'GET',
    path: (ctx) => `/v1/tasks/${ctx.taskId}`,
    auth: true,
    cache: 'hit-local',
    about:
      'the same on the api started with REQUEST_LOG_ENABLED=false (the others publish each ' +
      'request to RabbitMQ in batches of 500)',
  },
  {
    name: 'GET /v1/tasks/:id (cache off)',
    target: 'api-uncached',
    method: 'GET',
    path: (ctx) => `/v1/tasks/${ctx.taskId}`,
    auth: true,
    budget: {
      label: "GET /v1/tasks/:id, cache off: CPU at most 1.5x the bare pg read's",
      relativeTo: BARE.read,
      maxCpuRatio: 1.5,
    },
    about:
      'the same on the api started with CACHE_ENABLED=false: one row by primary key and owner ' +
      'from Postgres',
  },
  {
    name: 'GET /v1/tasks/:id (API key)',
    target: 'api',
    method: 'GET',
    path: (ctx) => `/v1/tasks/${ctx.taskId}`,
    headers: (ctx) => ({ 'x-api-key': ctx.apiKey }),
    budget: {
      label: 'API-key read, warm verification cache, vs the same read with a JWT',
      relativeTo: 'GET /v1/tasks/:id',
      minRatio: 0.9,
      maxVerificationP99DeltaMs: 1,
    },
    cache: 'hit-local',
    about:
      'the same read with `X-API-Key` (scopes tasks:read, tasks:write): checksum, SHA-256, ' +
      'cached verification, scope check',
  },
  {
    name: 'GET /v1/tasks?limit=20',
    target: 'api',
    method: 'GET',
    path: '/v1/tasks?limit=20',
    auth: true,
    cache: 'hit-local',
    about: 'JWT check, first keyset page of 20 of the 1 000 seeded tasks (-createdAt), cached',
  },
  {
    name: 'GET /v1/tasks?limit=20 (cache off)',
    target: 'api-uncached',
    method: 'GET',
    path: '/v1/tasks?limit=20',
    auth: true,
    budget: {
      label: "GET /v1/tasks?limit=20, cache off: CPU at most 1.6x the bare page query's",
      relativeTo: BARE.page,
      maxCpuRatio: 1.6,
    },
    about: 'the same page from Postgres, on the api started with CACHE_ENABLED=false',
  },
  {
    name: 'POST /v1/tasks',
    target: 'api',
    ...CREATE,
    budget: writeBudget('POST /v1/tasks', BARE.create),
    about:
      'JWT check, rate limit, validation, the task and its outbox row in a transaction, the ' +
      'cache scope moved on (no Idempotency-Key)',
  },
  {
    name: 'PATCH /v1/tasks/:id',
    target: 'api',
    ...UPDATE,
    budget: writeBudget('PATCH /v1/tasks/:id', BARE.update),
    about:
      'the same, changing the title of each seeded task in turn: the row locked, updated to a ' +
      'new version, its outbox row',
  },
  {
    name: 'DELETE /v1/tasks/:id',
    target: 'api',
    ...REMOVE,
    budget: writeBudget('DELETE /v1/tasks/:id', BARE.remove),
    about: 'the same, deleting tasks made for it: the row locked and deleted, its outbox row',
  },
  {
    name: 'POST /v1/tasks (worker, no subscriber)',
    target: 'api-webhooks',
    method: 'POST',
    path: '/v1/tasks',
    headers: (ctx) => ({
      'content-type': 'application/json',
      authorization: `Bearer ${ctx.webhooks.plainToken}`,
    }),
    body: JSON.stringify({ title: 'Benchmark task', priority: 'high', tags: ['bench'] }),
    about:
      'the write with its task.created event in the outbox, a worker relaying the events (and ' +
      'the request log) on the same core; the user has no webhook, so the fan-out finds none',
  },
  {
    name: 'POST /v1/tasks (worker, one subscriber)',
    target: 'api-webhooks',
    method: 'POST',
    path: '/v1/tasks',
    headers: (ctx) => ({
      'content-type': 'application/json',
      authorization: `Bearer ${ctx.webhooks.subscribedToken}`,
    }),
    body: JSON.stringify({ title: 'Benchmark task', priority: 'high', tags: ['bench'] }),
    budget: {
      label: 'POST /v1/tasks with one webhook subscriber vs none (outbox and worker on)',
      relativeTo: 'POST /v1/tasks (worker, no subscriber)',
      minRatio: 0.8,
    },
    about:
      'the same write by a user with one task.created webhook: the worker also makes a ' +
      'delivery and its job per task and POSTs it, signed, to a local receiver',
  },
  {
    name: 'POST /v1/tasks (postgres breaker open)',
    target: 'api-db-cut',
    method: 'POST',
    path: '/v1/tasks',
    auth: true,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'Refused task', priority: 'high' }),
    status: 503,
    rate: 500,
    budget: { label: 'writes refused while the postgres breaker is open', maxP99Ms: 5 },
    about:
      'the same write with Postgres cut off and its breaker open: JWT check, rate limit, ' +
      'validation, then 503 DEPENDENCY_UNAVAILABLE at once; 500 requests/s (fixed rate), so ' +
      'req/s is the rate sent, not a capacity',
  },
];

// ---------------------------------------------------------------------------------------------
// Small helpers

class BenchError extends Error {}

const log = (message) => process.stdout.write(`[bench] ${message}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const resolveField = (field, ctx) => (typeof field === 'function' ? field(ctx) : field);

/** A write's budget: its server CPU per request at most twice the bare write's. */
function writeBudget(name, bare) {
  return { label: `${name}: CPU at most 2x the bare write's`, relativeTo: bare, maxCpuRatio: 2 };
}

/** bench/rotate.lua's arguments: the ids file, the path template, method, body, headers. */
function rotateArgs(ctx, idsFile, method, body) {
  const headers = {
    ...(body ? { 'content-type': 'application/json' } : {}),
    authorization: `Bearer ${ctx.token}`,
  };
  return [idsFile, '/v1/tasks/{id}', method, body, ...Object.entries(headers).flat()];
}

/**
 * DELETABLE_TASKS new tasks of the seeded user, for a DELETE scenario's next load run: their ids
 * in a file for bench/rotate.lua, and one more for the probe request (ctx.deletable).
 */
async function makeDeletable(ctx) {
  const ids = await withPg(DATABASE_URL, async (pg) => {
    const { rows } = await pg.query(
      `INSERT INTO tasks (user_id, title) SELECT $1, 'To delete ' || i
         FROM generate_series(1, $2::int) AS i RETURNING id`,
      [ctx.userId, DELETABLE_TASKS + 1],
    );
    return rows.map((row) => row.id);
  });
  const file = path.join(RUN_DIR, 'deletable-ids.txt');
  fs.writeFileSync(file, ids.slice(1).join('\n') + '\n');
  ctx.deletable = { probe: ids[0], file };
}

function loud(lines) {
  const bar = '!'.repeat(78);
  process.stdout.write(`\n${bar}\n${lines.map((line) => `!! ${line}`).join('\n')}\n${bar}\n\n`);
}

function tail(file, lines = 40) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Every child we start, so that cleanup can stop whatever is still running. */
const children = new Set();
let interrupted = false;

function track(child) {
  if (interrupted) {
    child.kill('SIGKILL');
    throw new BenchError('interrupted');
  }
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Runs a command to completion; resolves with its exit code and output (never rejects on code). */
function run(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = track(
      spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...options }),
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code: code ?? 128, signal, stdout, stderr }));
  });
}

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

/** SIGTERM, then SIGKILL if the process is still there after `graceMs`. */
async function stop(child, graceMs = 10_000) {
  if (!child || exited(child)) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  let timer;
  const timeout = new Promise((resolve) => (timer = setTimeout(resolve, graceMs, 'timeout')));
  const outcome = await Promise.race([gone, timeout]);
  clearTimeout(timer);
  if (outcome === 'timeout' && !exited(child)) {
    child.kill('SIGKILL');
    await gone;
  }
}

async function freePort(preferred, taken = []) {
  for (let port = preferred; port < preferred + 100; port += 1) {
    if (!taken.includes(port) && (await portIsFree(port))) return port;
  }
  throw new BenchError(`no free port in ${preferred}-${preferred + 99}`);
}

async function request(url, { method = 'GET', headers = {}, body } = {}) {
  const response = await fetch(url, {
    method,
    headers,
    body,
    signal: AbortSignal.timeout(5000),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** Polls `url` until it answers 200; fails early if `child` exits, or after `timeoutMs`. */
async function waitFor200(url, child, logFile, what, headers = {}) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (exited(child)) {
      throw new BenchError(
        `${what} exited during start-up (code ${child.exitCode}, signal ${child.signalCode}).\n` +
          `--- last lines of ${path.relative(ROOT, logFile)} ---\n${tail(logFile)}`,
      );
    }
    try {
      const { status } = await request(url, { headers });
      if (status === 200) return;
      last = `HTTP ${status}`;
    } catch (error) {
      last = String(error.cause?.code ?? error.message);
    }
    await sleep(250);
  }
  throw new BenchError(
    `${what} not ready after ${READY_TIMEOUT_MS / 1000} s (${url}: ${last}).\n` +
      `--- last lines of ${path.relative(ROOT, logFile)} ---\n${tail(logFile)}`,
  );
}

/** Starts `args` pinned to `cpu`, stdout and stderr to `logFile`. */
function startPinned(cpu, args, env, logFile) {
  const fd = fs.openSync(logFile, 'w');
  try {
    return track(
      spawn('taskset', ['-c', cpu, ...args], { cwd: ROOT, env, stdio: ['ignore', fd, fd] }),
    );
  } finally {
    fs.closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// Steps

async function build() {
  log('building the apps (npm run build)...');
  const logFile = path.join(RUN_DIR, 'build.log');
  const startedAt = Date.now();
  const result = await run('npm', ['run', 'build']);
  // eslint-disable-next-line no-control-regex -- strips the colours of tsc's output
  const output = (result.stdout + result.stderr).replace(/\x1b\[[0-9;]*m/g, '');
  fs.writeFileSync(logFile, output);
  const fresh = fs.existsSync(API_ENTRY) && fs.statSync(API_ENTRY).mtimeMs >= startedAt - 1000;
  if (result.code !== 0) {
    // tsc still emits JavaScript when type checking fails. Errors in test files only (which the
    // apps' tsconfig should not even compile) do not change the api: go on, loudly.
    const failing = [...new Set(output.match(/^\S+\.tsx?(?=:\d+:\d+ - error TS)/gm) ?? [])];
    const onlySpecs = failing.length > 0 && failing.every((file) => /\.spec\.tsx?$/.test(file));
    if (!onlySpecs || !fresh) {
      throw new BenchError(
        `npm run build failed (exit ${result.code}).\n--- last lines of bench/.run/build.log ---\n` +
          tail(logFile),
      );
    }
    loud([
      `npm run build exited ${result.code}, with type errors in test files only:`,
      ...failing.map((file) => `  ${file}`),
      'The api JavaScript was emitted and is benchmarked; the build after the failing',
      'step (e.g. the worker) did not run. Details: bench/.run/build.log',
    ]);
    return `\`npm run build\` exited ${result.code}: type errors in ${failing.join(', ')} only; the emitted api was benchmarked.`;
  }
  if (!fresh) {
    throw new BenchError(`the build did not produce ${path.relative(ROOT, API_ENTRY)}`);
  }
  return null;
}

async function hasCommand(name) {
  return (await run('sh', ['-c', `command -v ${name}`])).code === 0;
}

async function ensureWrk() {
  if (await hasCommand('wrk')) return;
  log('wrk is missing: apt-get install -y wrk...');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let result = await run('apt-get', ['install', '-y', 'wrk'], { env });
  if (result.code !== 0) {
    log('install failed: apt-get update, then install again...');
    await run('apt-get', ['update'], { env });
    result = await run('apt-get', ['install', '-y', 'wrk'], { env });
  }
  if (!(await hasCommand('wrk'))) {
    throw new BenchError(
      'wrk is not installed and `apt-get install -y wrk` failed; install wrk and run again.\n' +
        (result.stderr || result.stdout).trim().split('\n').slice(-5).join('\n'),
    );
  }
}

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

/** The api's environment (also bench/verification-cost.js's, which builds its verifiers). */
const API_ENV = {
  ...process.env,
  NODE_ENV: 'production',
  JWT_SECRET: randomBytes(36).toString('base64url'),
  WEBHOOK_SECRETS_KEY: randomBytes(36).toString('base64url'),
  DATABASE_URL,
  REDIS_KEY_PREFIX: 'taskhub-bench:',
  RABBITMQ_QUEUE_PREFIX: 'taskhub-bench.',
  LOG_LEVEL: 'info',
};

async function startApi(port, extraEnv = {}, name = 'api') {
  log(
    `starting the ${name} on :${port}, pinned to core ${SERVER_CPU} (production, log level info)...`,
  );
  const env = { ...API_ENV, ...extraEnv, PORT: String(port) };
  const logFile = path.join(RUN_DIR, `${name}.log`);
  const child = startPinned(SERVER_CPU, ['node', ...NODE_RUNTIME_FLAGS, API_ENTRY], env, logFile);
  await waitFor200(`http://127.0.0.1:${port}/health/ready`, child, logFile, 'the api');
  return child;
}

/**
 * The worker for `target`, ready once consuming, pinned to the load's core: in production it runs
 * apart from the api (its own pods), and what the budget asks is what its work costs the api's
 * writes. At the few hundred writes per second Postgres allows here, wrk uses little of its core.
 */
async function startWorker(name, target, port) {
  log(`starting the worker of ${name} on :${port}, pinned to core ${LOAD_CPU}...`);
  const env = { ...API_ENV, ...target.env, WORKER_PORT: String(port) };
  const logFile = path.join(RUN_DIR, `${name}-worker.log`);
  const args = ['node', ...NODE_RUNTIME_FLAGS, WORKER_ENTRY];
  const child = startPinned(LOAD_CPU, args, env, logFile);
  await waitFor200(`http://127.0.0.1:${port}/health/ready`, child, logFile, 'the worker');
  return child;
}

/**
 * scripts/fleet.js for a target with `fleet`: nginx on `port` in front of that many apis and no
 * worker, with the api's environment and the target's, the fleet process pinned to the server
 * core (what it starts inherits the affinity). Resolves once it has printed its fleet-ready line,
 * with that line ({ pid, entry, apis: [{ pid, url }] }) and the child.
 */
async function startFleet(name, target, port) {
  log(
    `starting ${name}: nginx on :${port} in front of ${target.fleet} api(s), ` +
      `pinned to core ${SERVER_CPU}...`,
  );
  const env = {
    ...API_ENV,
    ...target.env,
    FLEET_HOST: '127.0.0.1',
    FLEET_PORT: String(port),
    FLEET_API_INSTANCES: String(target.fleet),
    FLEET_WORKER_INSTANCES: '0',
    // No drain before an api closes, as the api target's (the api's default): the fleet's own
    // (5 s) is for rolls, and this one stops only at the end.
    SHUTDOWN_DRAIN_DELAY_MS: '0',
  };
  const logFile = path.join(RUN_DIR, `${name}.log`);
  const child = startPinned(SERVER_CPU, ['node', FLEET_SCRIPT], env, logFile);
  // The instances' log lines go to the same file; the fleet's own are JSON lines with an event.
  const deadline = Date.now() + FLEET_READY_TIMEOUT_MS;
  for (;;) {
    const line = fs
      .readFileSync(logFile, 'utf8')
      .split('\n')
      .find((text) => text.startsWith('{"event":"fleet-ready"'));
    if (line) {
      const ready = JSON.parse(line);
      checkPinned(name, [ready.pid, ...descendants(ready.pid)]);
      return { ...ready, child };
    }
    if (exited(child) || Date.now() > deadline) {
      throw new BenchError(
        `${name} ${exited(child) ? `exited during start-up (code ${child.exitCode})` : 'not ready'}` +
          `.\n--- last lines of ${path.relative(ROOT, logFile)} ---\n${tail(logFile)}`,
      );
    }
    await sleep(250);
  }
}

/** The processes of a fleet whose CPU is measured: its apis, and nginx (all the rest below it). */
function fleetPids(fleet) {
  const api = fleet.apis.map((instance) => instance.pid);
  return { api, nginx: descendants(fleet.pid, api) };
}

/** Fails unless every one of `pids` may run on the server core only. */
function checkPinned(name, pids) {
  for (const pid of pids) {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const allowed = /^Cpus_allowed_list:\s*(\S+)/m.exec(status)?.[1];
    if (allowed !== SERVER_CPU) {
      throw new BenchError(
        `${name}: process ${pid} may run on cores ${allowed}, not ${SERVER_CPU}`,
      );
    }
  }
}

/** bench/receiver.js on the load's core: answers every delivery 204, and counts them. */
async function startReceiver(port) {
  log(`starting the webhook receiver on :${port}, pinned to core ${LOAD_CPU}...`);
  const logFile = path.join(RUN_DIR, 'receiver.log');
  const env = { ...process.env, BENCH_RECEIVER_PORT: String(port) };
  const child = startPinned(LOAD_CPU, ['node', RECEIVER_SCRIPT], env, logFile);
  await waitFor200(`http://127.0.0.1:${port}/count`, child, logFile, 'the receiver');
  return child;
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

/** Deletes the queues the webhooks target's worker declared (libs/messaging, through ts-node). */
async function deleteWebhooksQueues() {
  require('ts-node').register({ transpileOnly: true, compilerOptions: { module: 'commonjs' } });
  const { loadConfig } = require('../libs/config/src/config');
  const { declaredQueueNames } = require('../libs/messaging/src/topology');
  const config = loadConfig({ ...API_ENV, ...TARGETS['api-webhooks'].env });
  const amqp = require('amqplib');
  const connection = await amqp.connect(config.rabbitmq.url);
  try {
    const channel = await connection.createChannel();
    for (const name of declaredQueueNames(config)) await channel.deleteQueue(name);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** A FaultProxy (libs/testing, loaded through ts-node) in front of the local Postgres. */
async function proxyToPostgres() {
  require('ts-node').register({ transpileOnly: true, compilerOptions: { module: 'commonjs' } });
  const { FaultProxy } = require('../libs/testing/src/fault-proxy');
  const proxy = await FaultProxy.start({ host: '127.0.0.1', port: 5432 });
  state.proxies.push(proxy);
  return proxy;
}

/**
 * Cuts the target's Postgres (black hole: nothing answers) and sends writes until one is refused
 * by the open breaker (503 DEPENDENCY_UNAVAILABLE) rather than waited on.
 */
async function openPostgresBreaker(cut, ctx) {
  // The seeded user's rate-limit override must be loaded before the database goes: the
  // instance reads overrides from Postgres every 500 ms and keeps the last ones it read.
  const overridden = async () => {
    const answer = await request(`${cut.url}/v1/auth/whoami`, {
      headers: { authorization: `Bearer ${ctx.token}` },
    });
    return (answer.headers.get('ratelimit-policy') ?? '').includes(`q=${OVERRIDE_PER_MINUTE};`);
  };
  const until = Date.now() + 10_000;
  while (!(await overridden())) {
    if (Date.now() > until)
      throw new BenchError(`${cut.name}: the rate-limit override never applied`);
    await sleep(100);
  }
  log(`${cut.name}: cutting its Postgres and waiting for the postgres breaker to open...`);
  await cut.proxy.set({ kind: 'blackhole' });
  const write = () =>
    request(`${cut.url}/v1/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ctx.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'breaker opener' }),
    });
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const answers = await Promise.all(Array.from({ length: 10 }, write));
    const refused = answers.find((answer) => answer.status === 503);
    if (refused && JSON.parse(refused.text).code === 'DEPENDENCY_UNAVAILABLE') return;
  }
  throw new BenchError(`${cut.name}: its postgres breaker did not open within 30 s`);
}

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

/**
 * bench/verification-cost.js, pinned like the api, with the api stopped: p50/p99/max µs of one
 * access-token and one API-key verification (warm). Undefined, loudly, if it could not run.
 */
async function measureVerification(ctx) {
  log('measuring the cost of one credential verification, call by call...');
  const script = path.join(__dirname, 'verification-cost.js');
  const env = { ...API_ENV, BENCH_TOKEN: ctx.token, BENCH_API_KEY: ctx.apiKey };
  const measured = await run('taskset', ['-c', SERVER_CPU, 'node', script], { env });
  try {
    if (measured.code !== 0) throw new Error(measured.stderr || measured.stdout);
    const result = JSON.parse(measured.stdout);
    log(
      `verification p99: access token ${result.jwt.p99Us.toFixed(1)} µs, ` +
        `API key ${result.apiKey.p99Us.toFixed(1)} µs`,
    );
    return result;
  } catch (error) {
    loud(['could not measure the verification cost:', String(error.message ?? error)]);
    return undefined;
  }
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
    connection = await amqp.connect(API_ENV.RABBITMQ_URL || 'amqp://guest:guest@localhost:5672');
    const channel = await connection.createChannel();
    if (how === 'purge') await channel.purgeQueue(queue);
    else await channel.deleteQueue(queue);
  } catch (error) {
    log(`could not ${how} the queue ${queue}: ${error.message}`);
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

function requestOf(scenario, ctx) {
  const headers = { ...(resolveField(scenario.headers, ctx) ?? {}) };
  if (scenario.auth) headers.authorization = `Bearer ${ctx.token}`;
  return {
    method: scenario.method ?? 'GET',
    path: resolveField(scenario.path, ctx),
    headers,
    body: resolveField(scenario.body, ctx),
  };
}

function wrkArgs(scenario, ctx, url, seconds) {
  const req = requestOf(scenario, ctx);
  const script = scenario.lua ? path.resolve(__dirname, scenario.lua) : REQUEST_SCRIPT;
  const scriptArgs = scenario.lua
    ? (scenario.luaArgs?.(ctx) ?? [])
    : [req.method, req.body ?? '', ...Object.entries(req.headers).flat()];
  return [
    '-c',
    LOAD_CPU,
    'wrk',
    `-t${WRK_THREADS}`,
    `-c${WRK_CONNECTIONS}`,
    `-d${seconds}s`,
    '--latency',
    '-s',
    script,
    url + req.path,
    '--',
    ...scriptArgs,
  ];
}

const UNIT_MS = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function toMs(text) {
  const match = /^([\d.]+)(us|ms|s|m|h)$/.exec(text);
  if (!match) throw new BenchError(`cannot read the latency "${text}"`);
  return Number(match[1]) * UNIT_MS[match[2]];
}

/** Requests/sec, p50, p99, non-2xx count and socket errors from wrk's --latency output. */
function parseWrk(output) {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(output);
  const p50 = /^\s+50%\s+(\S+)/m.exec(output);
  const p99 = /^\s+99%\s+(\S+)/m.exec(output);
  const requests = /^\s+(\d+) requests in/m.exec(output);
  if (!rps || !p50 || !p99 || !requests) {
    throw new BenchError(`cannot read wrk's output:\n${output}`);
  }
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(output);
  const sockets = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(
    output,
  );
  return {
    rps: Number(rps[1]),
    p50Ms: toMs(p50[1]),
    p99Ms: toMs(p99[1]),
    requests: Number(requests[1]),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: sockets
      ? {
          connect: Number(sockets[1]),
          read: Number(sockets[2]),
          write: Number(sockets[3]),
          timeout: Number(sockets[4]),
        }
      : null,
  };
}

/**
 * One request first (must be 2xx), then the warm-up run, then the measured run. `server` has the
 * `url` the load goes to, `cpuPids()`: its processes by CPU part ({ api: [pid], ... }), and for a
 * fleet `instanceUrls`, its apis' own.
 */
async function measure(scenario, ctx, server, round, warmupSeconds) {
  const baseUrl = server.url;
  const label = `${scenario.name} (round ${round})`;
  await scenario.prepare?.(ctx);
  const req = requestOf(scenario, ctx);
  const result = { scenario, label, round, ok: false, problems: [] };
  try {
    const probe = await request(baseUrl + req.path, req);
    if (
      scenario.status ? probe.status !== scenario.status : probe.status < 200 || probe.status > 299
    ) {
      result.problems.push(`probe answered HTTP ${probe.status}: ${probe.text.slice(0, 300)}`);
      return result;
    }
  } catch (error) {
    result.problems.push(`probe failed: ${error.message}`);
    return result;
  }

  // The warm-up is wrk's full speed even for a fixed-rate scenario: what warms the JIT up is the
  // number of requests, and a few seconds at a fixed rate are too few.
  log(`${label}: warm-up ${warmupSeconds} s...`);
  await wrk(scenario, ctx, baseUrl, warmupSeconds);

  if (scenario.cache) {
    // What is measured must be what the scenario says: a cached read answered from the cache.
    // Behind nginx, each api has a cache of its own: each is asked directly too (the warm-up
    // through nginx, at full speed, reaches them all).
    for (const url of [baseUrl, ...(server.instanceUrls ?? [])]) {
      const check = await request(url + req.path, req);
      const outcome = check.headers.get('x-cache');
      if (outcome !== scenario.cache) {
        const from = url === baseUrl ? '' : ` from the api at ${url}`;
        result.problems.push(
          `X-Cache was ${outcome}${from} after the warm-up, not ${scenario.cache}`,
        );
        return result;
      }
    }
  }

  log(`${label}: measuring ${MEASURE_SECONDS} s...`);
  const load = scenario.rate ? fixedRate : wrk;
  // A target with a worker: its CPU and the api's, per request, to show where a cost falls.
  const pids = server.cpuPids();
  const parts = Object.entries(pids);
  await scenario.prepare?.(ctx);
  const redisBefore = await redisCommands();
  const cpuBefore = parts.map(([, list]) => list.map(cpuTicks));
  Object.assign(result, await load(scenario, ctx, baseUrl, MEASURE_SECONDS));
  const redisAfter = await redisCommands();
  const perRequest = (ticks) => (ticks * 1e6) / CLOCK_TICKS / result.requests;
  // Each process's, then each part's (the sum of its processes').
  const used = parts.map(([, list], i) =>
    list.map((p, j) => perRequest(cpuTicks(p) - cpuBefore[i][j])),
  );
  result.cpu = Object.fromEntries(
    parts.map(([part], i) => [part, used[i].reduce((sum, us) => sum + us, 0)]),
  );
  result.redisPerRequest = (redisAfter - redisBefore - 1) / result.requests;
  // For a part of several processes (a fleet's apis, nginx), each one's, for the log.
  const perProcess = parts
    .map(([part, list], i) => [part, list.map((p, j) => `${p}: ${fmt(used[i][j], 0)}`)])
    .filter(([, each]) => each.length > 1)
    .map(([part, each]) => `${part} ${each.join(', ')}`);

  const unexpected = result.non2xx;
  if (unexpected > 0) {
    result.problems.push(
      `${unexpected} of ${result.requests} responses were not ${scenario.status ?? '2xx/3xx'}`,
    );
  }
  const errors = result.socketErrors;
  if (errors && errors.connect + errors.read + errors.write + errors.timeout > 0) {
    result.problems.push(
      `socket errors: connect ${errors.connect}, read ${errors.read}, write ${errors.write}, ` +
        `timeout ${errors.timeout}`,
    );
  }
  if (scenario.rate && result.p50Ms > BEHIND_P50_MS) {
    result.problems.push(
      `fell behind its rate (p50 ${result.p50Ms.toFixed(1)} ms > ${BEHIND_P50_MS} ms): the server ` +
        "core was saturated (other work on it?), and a queue's CPU per request is not a steady load's",
    );
  }
  result.ok = unexpected === 0;
  log(
    `${label}: ${result.rps.toFixed(0)} req/s, p50 ${result.p50Ms.toFixed(2)} ms, ` +
      `p99 ${result.p99Ms.toFixed(2)} ms` +
      (result.cpu === undefined ? '' : `, CPU µs/req ${cpuText(result)}`) +
      (perProcess.length > 0 ? ` (${perProcess.join('; ')})` : ''),
  );
  return result;
}

let redisClient;
/**
 * Commands the shared Redis has processed so far (INFO stats, which counts a command once it has
 * run): the difference over a run, less the one INFO that came first, is what the servers sent.
 */
async function redisCommands() {
  const Redis = require('ioredis');
  redisClient ??= new Redis(API_ENV.REDIS_URL || 'redis://127.0.0.1:6379', { lazyConnect: false });
  const info = await redisClient.info('stats');
  return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? NaN);
}

/** The clock ticks per second of /proc's CPU times. */
const CLOCK_TICKS =
  Number(require('node:child_process').execSync('getconf CLK_TCK').toString()) || 100;

/** /proc/<pid>/stat's fields after the command name (which may hold spaces): from field 3 on. */
function statFields(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The CPU time (user + system, in clock ticks) the process has used so far. */
function cpuTicks(pid) {
  let fields;
  try {
    fields = statFields(pid);
  } catch (error) {
    if (error.code !== 'ENOENT') throw error;
    throw new BenchError(`process ${pid} exited during a measurement (see bench/.run/*.log)`);
  }
  return Number(fields[11]) + Number(fields[12]);
}

/** The processes below `pid` (its children, theirs...), leaving out those in `except` and theirs. */
function descendants(pid, except = []) {
  const parentOf = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      parentOf.set(Number(entry), Number(statFields(entry)[1]));
    } catch {
      // exited meanwhile
    }
  }
  const found = [];
  let level = [pid];
  while (level.length > 0) {
    const parents = level;
    level = [...parentOf]
      .filter(([child, parent]) => parents.includes(parent) && !except.includes(child))
      .map(([child]) => child);
    found.push(...level);
  }
  return found;
}

/** wrk's closed loop: WRK_CONNECTIONS connections, each sending as soon as it is answered. */
async function wrk(scenario, ctx, baseUrl, seconds) {
  const measured = await run('taskset', wrkArgs(scenario, ctx, baseUrl, seconds));
  if (measured.code !== 0) {
    throw new BenchError(`wrk failed:\n${measured.stderr || measured.stdout}`);
  }
  return { ...parseWrk(measured.stdout), raw: measured.stdout };
}

/** bench/fixed-rate.js's open loop at `scenario.rate`; `non2xx` counts unexpected answers. */
async function fixedRate(scenario, ctx, baseUrl, seconds) {
  const req = requestOf(scenario, ctx);
  const spec = {
    url: baseUrl + req.path,
    method: req.method,
    headers: req.headers,
    body: req.body ?? null,
    rate: scenario.rate,
    seconds,
    status: scenario.status ?? null,
  };
  const measured = await run('taskset', [
    '-c',
    LOAD_CPU,
    'node',
    FIXED_RATE_SCRIPT,
    JSON.stringify(spec),
  ]);
  if (measured.code !== 0) {
    throw new BenchError(`bench/fixed-rate.js failed:\n${measured.stderr || measured.stdout}`);
  }
  const figures = JSON.parse(measured.stdout);
  return {
    rps: figures.rps,
    p50Ms: figures.p50Ms,
    p99Ms: figures.p99Ms,
    requests: figures.requests,
    non2xx: figures.unexpected,
    socketErrors: null,
    raw: measured.stdout,
  };
}

async function runScenarios(scenarios, ctx, server, results, round, warmupSeconds) {
  for (const scenario of scenarios) {
    await server.before?.();
    const result = await measure(scenario, ctx, server, round, warmupSeconds);
    if (result.problems.length > 0) {
      loud([`${result.label}: ${result.ok ? 'WARNING' : 'FAILED'}`, ...result.problems]);
    }
    results.push(result);
  }
}

// ---------------------------------------------------------------------------------------------
// Report
const fmt = (value, digits) => (value === undefined ? '-' : value.toFixed(digits));

/** The median (the mean of the middle two for an even count); undefined when there is none. */
function median(values) {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The rounds of RATIO_BASE that went cleanly. */
const baselineRuns = (results) =>
  results.filter((r) => r.scenario.name === RATIO_BASE && r.ok && r.rps !== undefined);

/** The ratios' denominator: the baseline's median req/s over its clean rounds. */
const baselineRps = (results) => median(baselineRuns(results).map((r) => r.rps));

/** A warning when the baseline moved between its rounds (other work on the machine), else null. */
function baselineSpreadWarning(results) {
  const rps = baselineRuns(results).map((r) => r.rps);
  if (rps.length < 2) return null;
  const spread = 1 - Math.min(...rps) / Math.max(...rps);
  if (spread <= BASELINE_MAX_SPREAD) return null;
  return (
    `the baseline's rounds differ by up to ${(spread * 100).toFixed(0)}% ` +
    `(${rps.map((n) => n.toFixed(0)).join(', ')} req/s): other work on the machine (or its host) ` +
    'disturbed the run; the medians damp this, but check the spreads, or run again when the ' +
    'machine is quiet'
  );
}

/**
 * One summary per scenario over its rounds: the medians of req/s, p50 and p99 (each taken on its
 * own) and the lowest and highest req/s and p99, over the rounds that produced figures. ok only
 * if every round ran cleanly.
 */
function summarize(results) {
  // The scenarios that ran (all of them, unless BENCH_ONLY chose some).
  const ran = SCENARIOS.filter((scenario) => results.some((r) => r.scenario === scenario));
  return ran.map((scenario) => {
    const runs = results.filter((r) => r.scenario === scenario);
    const measured = runs.filter((r) => r.rps !== undefined);
    const values = (key) => measured.map((r) => r[key]);
    const range = (key) => [Math.min(...values(key)), Math.max(...values(key))];
    return {
      scenario,
      rounds: measured.length,
      ok: runs.length > 0 && runs.every((r) => r.ok),
      rps: median(values('rps')),
      p50Ms: median(values('p50Ms')),
      p99Ms: median(values('p99Ms')),
      // Each CPU part's median, for the table; the budgets take the median of a sum of parts.
      cpu: measured.every((r) => r.cpu !== undefined)
        ? Object.fromEntries(
            Object.keys(measured[0]?.cpu ?? {}).map((part) => [
              part,
              median(measured.map((r) => r.cpu[part])),
            ]),
          )
        : undefined,
      cpuRounds: measured.map((r) => r.cpu),
      redisPerRequest: median(values('redisPerRequest')),
      rpsRange: range('rps'),
      p99Range: range('p99Ms'),
    };
  });
}

/** `median (lowest–highest)`, or the value alone when there was a single round. */
function withRange(value, [low, high], rounds, digits) {
  if (value === undefined) return '-';
  if (rounds < 2) return value.toFixed(digits);
  return `${value.toFixed(digits)} (${low.toFixed(digits)}–${high.toFixed(digits)})`;
}

function summaryRows(summaries, base) {
  return summaries.map((s) => ({
    name: s.scenario.name,
    rps: withRange(s.rps, s.rpsRange, s.rounds, 0),
    p50: fmt(s.p50Ms, 2),
    p99: withRange(s.p99Ms, s.p99Range, s.rounds, 2),
    ratio: s.rps !== undefined && base ? (s.rps / base).toFixed(3) : '-',
    cpu: cpuText(s),
    redis: fmt(s.redisPerRequest, 3),
    note: s.ok ? '' : 'FAILED',
  }));
}

/**
 * The api's CPU per request, then each other part's after a `+`: its worker's for a target with
 * one, nginx's for a fleet ("120 + 30 nginx").
 */
function cpuText({ cpu }) {
  if (cpu === undefined) return '-';
  const { api, ...others } = cpu;
  const rest = Object.entries(others);
  if (rest.length === 0) return fmt(api, 1);
  return [fmt(api, 0), ...rest.map(([part, us]) => `${fmt(us, 0)} ${part}`)].join(' + ');
}

/**
 * The median over a summary's rounds of the CPU per request of `parts` together; undefined
 * without a CPU figure in every round, or, if `all`, when a round lacks one of the parts.
 */
function cpuOf(summary, parts, all) {
  const rounds = summary.cpuRounds;
  if (rounds.length === 0 || rounds.some((cpu) => cpu === undefined)) return undefined;
  if (all && rounds.some((cpu) => parts.some((part) => cpu[part] === undefined))) return undefined;
  return median(rounds.map((cpu) => parts.reduce((sum, part) => sum + (cpu[part] ?? 0), 0)));
}

/** Every measurement, in the order taken. */
const roundRows = (results) =>
  results.map((r) => ({
    round: String(r.round),
    name: r.scenario.name,
    rps: fmt(r.rps, 0),
    p50: fmt(r.p50Ms, 2),
    p99: fmt(r.p99Ms, 2),
    cpu: cpuText(r),
    redis: fmt(r.redisPerRequest, 3),
    note: r.ok ? '' : 'FAILED',
  }));

/** The last column of each, `note`, is a suffix of the scenario's name in Markdown. */
const SUMMARY_COLUMNS = [
  ['name', 'scenario'],
  ['rps', 'median req/s (min–max)'],
  ['p50', 'median p50 ms'],
  ['p99', 'median p99 ms (min–max)'],
  ['ratio', 'ratio to baseline'],
  ['cpu', 'server CPU µs/req'],
  ['redis', 'Redis cmds/req'],
  ['note', ''],
];
const ROUND_COLUMNS = [
  ['round', 'round'],
  ['name', 'scenario'],
  ['rps', 'req/s'],
  ['p50', 'p50 ms'],
  ['p99', 'p99 ms'],
  ['cpu', 'CPU µs/req'],
  ['redis', 'Redis cmds/req'],
  ['note', ''],
];

function textTable(columns, tableRows) {
  const widths = columns.map(([key, title]) =>
    Math.max(title.length, ...tableRows.map((row) => row[key].length)),
  );
  const line = (cells) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])));
  return [
    line(columns.map(([, title]) => title)).join('  '),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...tableRows.map((row) => line(columns.map(([key]) => row[key])).join('  ')),
  ].join('\n');
}

function markdownTable(columns, tableRows) {
  const shown = columns.slice(0, -1);
  return [
    `| ${shown.map(([, title]) => title).join(' | ')} |`,
    `|${shown.map(([key]) => (key === 'name' ? '---' : '---:')).join('|')}|`,
    ...tableRows.map(
      (row) =>
        `| ${shown.map(([key]) => (key === 'name' && row.note ? `${row.name} (**${row.note}**)` : row[key])).join(' | ')} |`,
    ),
  ].join('\n');
}

/** The api's memory budget: its peak resident set through the whole run. */
const MAX_API_RSS_MIB = 256;

/** A process's peak resident set so far (VmHWM), in MiB. */
function peakRssMiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

/** One verdict per budget, on the medians: PASS only if every round ran and every limit holds. */
function verdicts(summaries, base, verification, apiPeakRss) {
  const memory =
    apiPeakRss === undefined
      ? []
      : [
          {
            label: "steady memory: the api's peak RSS through the bench",
            pass: apiPeakRss <= MAX_API_RSS_MIB,
            detail: `${apiPeakRss.toFixed(0)} MiB ${apiPeakRss <= MAX_API_RSS_MIB ? '<=' : '>'} ${MAX_API_RSS_MIB} MiB`,
          },
        ];
  return summaries
    .flatMap((s) => [s.scenario.budget ?? []].flat().map((budget) => ({ s, budget })))
    .map(({ s, budget }) => {
      const {
        label,
        minRatio,
        maxP99Ms,
        relativeTo,
        maxVerificationP99DeltaMs,
        maxCpuRatio,
        cpuParts,
        maxRedisPerRequest,
      } = budget;
      const reference = relativeTo && summaries.find((other) => other.scenario.name === relativeTo);
      const against = relativeTo ? reference?.rps : base;
      const checks = [];
      let pass = s.ok && s.rps !== undefined && against !== undefined;
      if (!s.ok) checks.push('scenario failed');
      if (against === undefined) checks.push(`no ${relativeTo ?? 'baseline'} figure`);
      const of = relativeTo ? ` to ${relativeTo}` : '';
      if (minRatio !== undefined && s.rps !== undefined && against !== undefined) {
        const ratio = s.rps / against;
        const ok = ratio >= minRatio;
        pass &&= ok;
        checks.push(`ratio of medians${of} ${ratio.toFixed(3)} ${ok ? '>=' : '<'} ${minRatio}`);
      }
      if (maxCpuRatio !== undefined) {
        const parts = cpuParts ?? ['api'];
        const mine = cpuOf(s, parts, true);
        const theirs = reference ? cpuOf(reference, parts, false) : undefined;
        if (mine === undefined || theirs === undefined) {
          pass = false;
          checks.push('no CPU figure');
        } else {
          const ratio = mine / theirs;
          const ok = ratio <= maxCpuRatio;
          const which = cpuParts ? ` (${parts.join(' + ')})` : '';
          pass &&= ok;
          const rpsRatio =
            minRatio === undefined && s.rps !== undefined && against !== undefined
              ? ` (req/s ${(s.rps / against).toFixed(3)}x)`
              : '';
          checks.push(
            `server CPU per request${which} ${mine.toFixed(1)} µs vs ${theirs.toFixed(1)} µs${of}: ` +
              `${ratio.toFixed(3)} ${ok ? '<=' : '>'} ${maxCpuRatio}${rpsRatio}`,
          );
        }
      }
      if (maxRedisPerRequest !== undefined) {
        const ok = s.redisPerRequest !== undefined && s.redisPerRequest <= maxRedisPerRequest;
        pass &&= ok;
        checks.push(
          `Redis commands per request ${fmt(s.redisPerRequest, 4)} ${ok ? '<=' : '>'} ${maxRedisPerRequest}`,
        );
      }
      if (maxP99Ms !== undefined && s.p99Ms !== undefined) {
        const ok = s.p99Ms <= maxP99Ms;
        pass &&= ok;
        checks.push(`median p99 ${s.p99Ms.toFixed(2)} ms ${ok ? '<=' : '>'} ${maxP99Ms} ms`);
      }
      if (reference?.p99Ms !== undefined && s.p99Ms !== undefined) {
        // Shown, not judged: under wrk, p99s differ by more than a millisecond run to run.
        const delta = s.p99Ms - reference.p99Ms;
        checks.push(`(end-to-end median p99 ${delta >= 0 ? '+' : ''}${delta.toFixed(2)} ms)`);
      }
      if (maxVerificationP99DeltaMs !== undefined) {
        if (verification === undefined) {
          pass = false;
          checks.push('no verification-cost measurement');
        } else {
          const deltaMs = (verification.apiKey.p99Us - verification.jwt.p99Us) / 1000;
          const ok = deltaMs <= maxVerificationP99DeltaMs;
          pass &&= ok;
          checks.push(
            `verification p99 ${verification.apiKey.p99Us.toFixed(1)} µs vs ` +
              `${verification.jwt.p99Us.toFixed(1)} µs for the JWT: adds ${(deltaMs * 1000).toFixed(1)} µs ` +
              `${ok ? '<=' : '>'} ${maxVerificationP99DeltaMs} ms`,
          );
        }
      }
      return { label: label ?? s.scenario.name, pass, detail: checks.join(', ') };
    })
    .concat(memory);
}

const loadAverage = () =>
  os
    .loadavg()
    .map((n) => n.toFixed(2))
    .join(', ');

function duration(ms) {
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s`;
}

function verificationText(v) {
  if (v === undefined) return "Not measured: see the run's output.";
  const row = (name, m) =>
    `| ${name} | ${m.p50Us.toFixed(1)} | ${m.p99Us.toFixed(1)} | ${m.maxUs.toFixed(1)} |`;
  return [
    `One verification of the seeded credentials, timed call by call (${v.calls} of each, warm,`,
    'interleaved in batches; `bench/verification-cost.js`, pinned to the server core):',
    '',
    '| credential | p50 µs | p99 µs | max µs |',
    '| --- | ---: | ---: | ---: |',
    row('access token (`AccessTokenService.verify`)', v.jwt),
    row('API key (`ApiKeyVerifier.verify`)', v.apiKey),
  ].join('\n');
}

async function writeResults(results, meta, verification, apiPeakRss) {
  const base = baselineRps(results);
  const summaries = summarize(results);
  const budgetLines = verdicts(summaries, base, verification, apiPeakRss).map(
    (v) => `- **${v.pass ? 'PASS' : 'FAIL'}** ${v.label}: ${v.detail}`,
  );
  const spread = baselineSpreadWarning(results);
  const problemLines = [
    ...(spread ? [`- **Noisy run**: ${spread}.`] : []),
    ...results.flatMap((r) => r.problems.map((p) => `- ${r.label}: ${p}`)),
  ];
  const scenarioLines = SCENARIOS.map((s) => `- \`${s.name}\`: ${s.about ?? ''}`);
  const text = `# Benchmark results

> Absolute figures drift between runs on shared machines (other tenants, CPU frequency, noisy
> neighbours). Compare **ratios to the baseline measured in the same run**, not req/s across runs.
> Regenerate with \`npm run bench\` (this file is overwritten).

- Date: ${meta.date}
- Node ${process.version}, \`nproc\` = ${meta.nproc}, ${meta.cpu}
- Load average (1, 5, 15 min) before the run: ${meta.load}; after: ${loadAverage()}. Other work
  on the machine during the run skews the figures.
- ${meta.wrk}
- Commit: ${meta.commit}${meta.buildNote ? `\n- Build warning: ${meta.buildNote}` : ''}
- Rounds: ${meta.rounds}; the whole run took ${duration(Date.now() - meta.startedAt)} (build included).

## Table

Medians over the ${meta.rounds} rounds; in parentheses, the lowest and highest of the rounds.

${markdownTable(SUMMARY_COLUMNS, summaryRows(summaries, base))}

## Budgets

${budgetLines.join('\n')}

## Credential verification

${verificationText(verification)}
${problemLines.length ? `\n## Problems\n\n${problemLines.join('\n')}\n` : ''}
## Rounds

Every measurement, in the order taken:

${markdownTable(ROUND_COLUMNS, roundRows(results))}

## Method

- Server pinned to core ${SERVER_CPU} (\`taskset -c ${SERVER_CPU}\`), load generator on core ${LOAD_CPU}:
  \`taskset -c ${LOAD_CPU} wrk -t${WRK_THREADS} -c${WRK_CONNECTIONS} -d${MEASURE_SECONDS}s --latency\`, after a warm-up
  run of the same command (${WARMUP_SECONDS} s in round 1, ${LATER_WARMUP_SECONDS} s from round 2 on; its figures are discarded).
- The api and the baseline are each started once. The measurements run in ${meta.rounds} rounds
  (\`BENCH_ROUNDS\`, default ${DEFAULT_ROUNDS}); each round loads the baseline (the api idle), then each of
  the api's scenarios in the order listed below (the baseline idle): one server is loaded at a
  time, and other work on the machine hits every scenario alike. Between rounds, the tasks created
  during the round are deleted and the table vacuumed, so every round reads and writes the seeded
  data.
- The api is the production build (\`npm run build\`, \`node dist/apps/api/apps/api/src/main.js\`)
  with \`NODE_ENV=production\`, \`LOG_LEVEL=info\` (one access-log line per request, written to a
  file), a random 48-character \`JWT_SECRET\`, on a fresh database \`${DATABASE}\` (dropped after
  the run), with Redis and RabbitMQ running locally.
- Two more apis from the same build, on the same core (idle while the others are loaded): one
  with \`RATE_LIMIT_ENABLED=false\` serves the "(limiter off)" scenarios, one with
  \`CACHE_ENABLED=false\` the "(cache off)" ones: what the limiter costs, and what the cache
  saves, are the ratios of the same scenario on two of them. The seeded user and key have an override of 10⁹ requests a minute, so every request takes
  its rate-limit decision in Redis and is admitted.
- The fleets \`fleet-1\`, \`fleet-2\`, \`fleet-3\`: \`taskset -c ${SERVER_CPU} node scripts/fleet.js\` with
  1, 2 or 3 apis and no worker (nginx, its worker and the apis inherit the core), with the api's
  environment, database, Redis prefix and queues; the load goes to nginx. Their CPU per request
  is the apis' together, then nginx's (its master and worker: the fleet process's descendants
  that are not apis); the fleet process, idle once ready, is not counted. After the warm-up,
  each api is asked directly for its X-Cache.
- Postgres, Redis and RabbitMQ are not pinned: they share the two cores with the server and wrk.
- Data: one user registered through \`POST /v1/auth/register\`, with one API key made through
  \`POST /v1/api-keys\`, and ${SEED_TASKS} tasks inserted by SQL (varied status, priority, due date,
  tags, description); \`GET /v1/tasks/:id\` reads a task from the middle of them. Every request
  carries the user's access token, except the API-key scenario's, which carry the key instead.
- Before each measurement, one request checks the scenario answers 2xx; a scenario with any
  non-2xx response under load, in any round, counts as failed.
- The table shows, per scenario, the medians over the rounds of req/s, p50 and p99 (each taken on
  its own), and the lowest and highest req/s and p99 of the rounds. Ratios are the median req/s
  over the baseline's median req/s, and the budgets are judged on the medians (ratio and p99); a
  budget relative to another scenario (the API-key read) compares the two scenarios' medians.
  When the baseline's rounds differ by more than ${BASELINE_MAX_SPREAD * 100}% (lowest to highest), the run is
  flagged as noisy.

Scenarios:

${scenarioLines.join('\n')}
`;
  // Formatted like the rest of the repository, so `npm run format:check` stays green.
  const prettier = require('prettier');
  const options = (await prettier.resolveConfig(RESULTS_FILE)) ?? {};
  fs.writeFileSync(
    RESULTS_FILE,
    await prettier.format(text, { ...options, filepath: RESULTS_FILE }),
  );
}

// ---------------------------------------------------------------------------------------------
// Main

const state = {
  apis: [],
  proxies: [],
  baseline: null,
  seed: null,
  databaseCreated: false,
  webhooksUsed: false,
};
let cleaning = null;

function cleanup() {
  cleaning ??= (async () => {
    await Promise.all([
      stop(state.baseline),
      stop(state.seed),
      ...state.apis.map((api) => stop(api)),
    ]);
    await Promise.all(state.proxies.map((proxy) => proxy.close()));
    redisClient?.disconnect();
    await Promise.all([...children].map((child) => stop(child, 3000)));
    await dropRequestLog('delete');
    if (state.webhooksUsed) {
      await deleteWebhooksQueues().catch((error) =>
        log(`could not delete the webhooks target's queues: ${error.message}`),
      );
      await dropDatabase(WEBHOOKS_DATABASE).catch((error) =>
        log(`could not drop ${WEBHOOKS_DATABASE}: ${error.message}`),
      );
    }
    if (state.databaseCreated) {
      try {
        await dropDatabase();
        log(`dropped the database ${DATABASE}`);
      } catch (error) {
        log(`could not drop the database ${DATABASE}: ${error.message}`);
      }
    }
  })();
  return cleaning;
}

async function metadata() {
  const wrk = await run('wrk', ['-v']);
  const commit = await run('git', ['rev-parse', '--short', 'HEAD']);
  const dirty = await run('git', ['status', '--porcelain', '--untracked-files=no']);
  return {
    date: new Date().toISOString(),
    load: loadAverage(),
    nproc: (await run('nproc', [])).stdout.trim(),
    cpu: os.cpus()[0]?.model ?? 'unknown CPU',
    wrk: (wrk.stdout + wrk.stderr).split('\n')[0].replace(/\s*Copyright.*$/, ''),
    commit:
      commit.code === 0
        ? `${commit.stdout.trim()}${dirty.stdout.trim() ? ' (with uncommitted changes)' : ''}`
        : 'unknown',
  };
}

/**
 * BENCH_ONLY: a regular expression; only the scenarios whose name matches it run (the baseline
 * always does), and bench/RESULTS.md is left as it is. For quick comparisons while profiling.
 */
function onlyScenarios() {
  for (const scenario of SCENARIOS) {
    if (scenario.status && !scenario.rate) {
      throw new BenchError(`${scenario.name}: \`status\` needs \`rate\` (wrk cannot check it)`);
    }
    for (const { cpuParts = [] } of [scenario.budget ?? []].flat()) {
      const unknown = cpuParts.filter((part) => !CPU_PARTS.includes(part));
      if (unknown.length > 0) {
        throw new BenchError(`${scenario.name}: no CPU part ${unknown.join(', ')} (${CPU_PARTS})`);
      }
    }
  }
  const text = (process.env.BENCH_ONLY ?? '').trim();
  if (text === '') return SCENARIOS;
  let pattern;
  try {
    pattern = new RegExp(text);
  } catch (error) {
    throw new BenchError(`BENCH_ONLY is not a regular expression: ${error.message}`);
  }
  const chosen = SCENARIOS.filter(
    (s) => s.target === 'baseline' || s.target === 'seed' || pattern.test(s.name),
  );
  if (chosen.every((s) => s.target === 'baseline' || s.target === 'seed')) {
    throw new BenchError(`BENCH_ONLY=${text} matches no scenario`);
  }
  return chosen;
}

/** BENCH_ROUNDS: a whole number >= 1, DEFAULT_ROUNDS when unset or empty. */
function benchRounds() {
  const text = (process.env.BENCH_ROUNDS ?? '').trim();
  if (text === '') return DEFAULT_ROUNDS;
  if (!/^\d+$/.test(text) || Number(text) < 1) {
    throw new BenchError(`BENCH_ROUNDS must be a whole number >= 1, not "${text}"`);
  }
  return Number(text);
}

async function main() {
  const startedAt = Date.now();
  const rounds = benchRounds();
  const scenarios = onlyScenarios();
  fs.mkdirSync(RUN_DIR, { recursive: true });
  const buildNote = await build();
  await ensureWrk();
  const meta = { ...(await metadata()), buildNote, rounds, startedAt };

  state.databaseCreated = true;
  await createDatabase();

  const taken = [];
  const urls = {};
  const pids = {};
  const workerPids = {};
  const fleets = {};
  const cuts = [];
  for (const [name, target] of Object.entries(TARGETS)) {
    // The api serves the seeding; the variants start only when a scenario needs them.
    if (name !== 'api' && !scenarios.some((s) => s.target === name)) continue;
    const port = await freePort(target.port, taken);
    taken.push(port);
    urls[name] = `http://127.0.0.1:${port}`;
    if (target.fleet) {
      fleets[name] = await startFleet(name, target, port);
      urls[name] = fleets[name].entry;
      state.apis.push(fleets[name].child);
      continue;
    }
    const env = { ...target.env };
    if (target.cutDatabase) {
      const proxy = await proxyToPostgres();
      env.DATABASE_URL = `postgres://postgres@127.0.0.1:${proxy.port}/${DATABASE}`;
      cuts.push({ name, url: urls[name], proxy });
    }
    if (target.worker) {
      // A fresh one, which the api creates and migrates.
      state.webhooksUsed = true;
      await dropDatabase(WEBHOOKS_DATABASE);
    }
    const api = await startApi(port, env, name);
    state.apis.push(api);
    pids[name] = api.pid;
    if (target.worker) {
      const workerPort = await freePort(WORKER_PORT, taken);
      taken.push(workerPort);
      const worker = await startWorker(name, target, workerPort);
      state.apis.push(worker);
      workerPids[name] = worker.pid;
    }
  }
  const apiUrl = urls.api;
  const baselinePort = await freePort(BASELINE_PORT, taken);
  const baselineUrl = `http://127.0.0.1:${baselinePort}`;
  const ctx = await seed(apiUrl);
  if (urls['api-webhooks']) {
    const receiverPort = await freePort(RECEIVER_PORT, taken);
    taken.push(receiverPort);
    state.apis.push(await startReceiver(receiverPort));
    ctx.webhooks = await seedWebhooks(urls['api-webhooks'], `http://127.0.0.1:${receiverPort}`);
  }
  const mark = await seedMark();
  for (const cut of cuts) await openPostgresBreaker(cut, ctx);

  // The baseline answers exactly what the api answers for the picked task.
  const task = await request(`${apiUrl}/v1/tasks/${ctx.taskId}`, {
    headers: { authorization: `Bearer ${ctx.token}` },
  });
  if (task.status !== 200) {
    throw new BenchError(`GET /v1/tasks/${ctx.taskId} answered ${task.status}: ${task.text}`);
  }
  const bodyFile = path.join(RUN_DIR, 'task.json');
  fs.writeFileSync(bodyFile, task.text);

  // Both servers stay up for the whole run, pinned to the same core: each is idle while the
  // other is loaded.
  log(`starting the bare server on :${baselinePort}, pinned to core ${SERVER_CPU}...`);
  const baselineLog = path.join(RUN_DIR, 'bare-server.log');
  const probePath = `/json/tasks/${ctx.taskId}`;
  state.baseline = startPinned(
    SERVER_CPU,
    // The same runtime flags as the api: the comparison is of the code, not of V8's settings.
    ['node', ...NODE_RUNTIME_FLAGS, path.join(__dirname, 'bare-server.js')],
    {
      ...process.env,
      DATABASE_URL,
      JWT_SECRET: API_ENV.JWT_SECRET,
      BENCH_BARE_PORT: String(baselinePort),
      BENCH_BARE_BODY_FILE: bodyFile,
    },
    baselineLog,
  );
  await waitFor200(baselineUrl + probePath, state.baseline, baselineLog, 'the bare server');
  // The same bodies as the api's: the JSON route, and the task read from Postgres.
  for (const [url, headers] of [
    [baselineUrl + probePath, {}],
    [`${baselineUrl}/v1/tasks/${ctx.taskId}`, { authorization: `Bearer ${ctx.token}` }],
  ]) {
    const same = await request(url, { headers });
    if (same.text !== task.text) {
      loud([`the bare server's ${url} differs from the api's body:`, same.text, task.text]);
    }
  }

  const seedPort = await freePort(SEED_PORT, [...taken, baselinePort]);
  const seedUrl = `http://127.0.0.1:${seedPort}`;
  log(`starting the seed-style stack on :${seedPort}, pinned to core ${SERVER_CPU}...`);
  const seedLog = path.join(RUN_DIR, 'seed-stack.log');
  state.seed = startPinned(
    SERVER_CPU,
    ['node', ...NODE_RUNTIME_FLAGS, path.join(__dirname, 'seed-stack.js')],
    {
      ...process.env,
      DATABASE_URL,
      JWT_SECRET: API_ENV.JWT_SECRET,
      BENCH_SEED_PORT: String(seedPort),
    },
    seedLog,
  );
  await waitFor200(
    `${seedUrl}/v1/tasks/${ctx.taskId}`,
    state.seed,
    seedLog,
    'the seed-style stack',
    { authorization: `Bearer ${ctx.token}` },
  );

  const results = [];
  const baselineScenarios = scenarios.filter((s) => s.target === 'baseline');
  const seedScenarios = scenarios.filter((s) => s.target === 'seed');
  for (let round = 1; round <= rounds; round += 1) {
    const warmupSeconds = round === 1 ? WARMUP_SECONDS : LATER_WARMUP_SECONDS;
    log(`round ${round} of ${rounds}: the baseline (apis idle), then each api (the others idle)`);
    const baselineServer = { url: baselineUrl, cpuPids: () => ({ api: [state.baseline.pid] }) };
    await runScenarios(baselineScenarios, ctx, baselineServer, results, round, warmupSeconds);
    const seedServer = { url: seedUrl, cpuPids: () => ({ api: [state.seed.pid] }) };
    await runScenarios(seedScenarios, ctx, seedServer, results, round, warmupSeconds);
    for (const [name, url] of Object.entries(urls)) {
      const ofTarget = scenarios.filter((s) => s.target === name);
      const before = TARGETS[name].worker ? () => settleWorker(ctx) : undefined;
      const fleet = fleets[name];
      const server = fleet
        ? { url, instanceUrls: fleet.apis.map((api) => api.url), cpuPids: () => fleetPids(fleet) }
        : {
            url,
            cpuPids: () => ({
              api: [pids[name]],
              ...(workerPids[name] ? { worker: [workerPids[name]] } : {}),
            }),
            before,
          };
      await runScenarios(ofTarget, ctx, server, results, round, warmupSeconds);
    }
    if (round < rounds) await restoreSeed(mark);
  }
  const apiPeakRss = peakRssMiB(pids.api);
  await stop(state.baseline);
  await stop(state.seed);
  await Promise.all(state.apis.map((api) => stop(api)));
  await Promise.all(cuts.map((cut) => cut.proxy.close()));
  const verification = await measureVerification(ctx);

  const base = baselineRps(results);
  const summaries = summarize(results);
  process.stdout.write(
    `\nMedians over ${rounds} round(s); in parentheses, the lowest and highest of the rounds.\n\n` +
      `${textTable(SUMMARY_COLUMNS, summaryRows(summaries, base))}\n\nBudgets:\n`,
  );
  for (const v of verdicts(summaries, base, verification, apiPeakRss)) {
    process.stdout.write(`  ${v.pass ? 'PASS' : 'FAIL'}  ${v.label}: ${v.detail}\n`);
  }
  const failed = results.filter((r) => !r.ok).map((r) => r.label);
  if (failed.length > 0) loud([`FAILED SCENARIOS: ${failed.join(', ')}`, 'see above']);
  const spread = baselineSpreadWarning(results);
  if (spread) loud(['NOISY RUN', spread]);

  if (scenarios !== SCENARIOS) {
    log(`BENCH_ONLY: ${path.relative(ROOT, RESULTS_FILE)} left as it was`);
    return;
  }
  await writeResults(results, meta, verification, apiPeakRss);
  log(
    `wrote ${path.relative(ROOT, RESULTS_FILE)} (the run took ${duration(Date.now() - startedAt)})`,
  );
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    interrupted = true;
    log(`${signal}: cleaning up...`);
    cleanup().finally(() => process.exit(130));
  });
}
// Last resort if something exits the process without cleanup.
process.once('exit', () => {
  for (const child of children) if (!exited(child)) child.kill('SIGKILL');
});

main()
  .then(
    () => 0,
    (error) => {
      if (interrupted) return 130;
      const message = error instanceof BenchError ? error.message : (error.stack ?? String(error));
      process.stderr.write(`\n[bench] the benchmark could not run: ${message}\n`);
      return 1;
    },
  )
  .then(async (code) => {
    await cleanup();
    if (!interrupted) process.exit(code);
  });
