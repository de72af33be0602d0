// @ts-check
'use strict';

/** Where `npm run bench` runs and how hard: paths, ports, databases, the targets it starts, the
 * load's shape, and the api's environment. */
const path = require('node:path');
const { randomBytes } = require('node:crypto');

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

/** The api's memory budget: its peak resident set through the whole run. */
const MAX_API_RSS_MIB = 256;

module.exports = {
  API_ENTRY,
  API_ENV,
  BASELINE_MAX_SPREAD,
  BASELINE_PORT,
  BEHIND_P50_MS,
  CPU_PARTS,
  DATABASE,
  DATABASE_URL,
  DEFAULT_ROUNDS,
  DRAIN_TIMEOUT_MS,
  FIXED_RATE_SCRIPT,
  FLEET_READY_TIMEOUT_MS,
  FLEET_SCRIPT,
  LATER_WARMUP_SECONDS,
  LOAD_CPU,
  MAX_API_RSS_MIB,
  MEASURE_SECONDS,
  OVERRIDE_PER_MINUTE,
  PG_ADMIN_URL,
  RATIO_BASE,
  READY_TIMEOUT_MS,
  RECEIVER_PORT,
  RECEIVER_SCRIPT,
  REQUEST_SCRIPT,
  RESULTS_FILE,
  ROOT,
  RUN_DIR,
  SEED_PORT,
  SEED_TASKS,
  SERVER_CPU,
  TARGETS,
  WARMUP_SECONDS,
  WEBHOOKS_DATABASE,
  WEBHOOKS_DATABASE_URL,
  WORKER_ENTRY,
  WORKER_PORT,
  WRK_CONNECTIONS,
  WRK_THREADS,
};
