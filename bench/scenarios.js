// @ts-check
'use strict';

/** What `npm run bench` measures: each scenario, its target, its request and its budgets (see
 * the list's comment for the fields). */
const fs = require('node:fs');
const path = require('node:path');
const { withPg } = require('./lib');
const { DATABASE_URL, RUN_DIR } = require('./settings');

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

module.exports = {
  SCENARIOS,
};
