// @ts-check
'use strict';

/** Where `npm run bench:capacity` runs and what it assumes: paths, its database, queues and
 * ports, the cores, the timings of a measurement, and the capacity model's assumptions. */
const path = require('node:path');
const {
  API_ENTRY,
  LOAD_CPU,
  OVERRIDE_PER_MINUTE,
  PG_ADMIN_URL,
  READY_TIMEOUT_MS,
  ROOT,
  RUN_DIR,
  SERVER_CPU,
  WORKER_ENTRY,
} = require('../settings');

const OUTPUT = path.join(ROOT, 'bench/CAPACITY.md');
/** The last run's measurements: `node bench/capacity/run.js report` remakes the model from them. */
const MEASUREMENTS = path.join(RUN_DIR, 'capacity.json');
const DIST = path.join(ROOT, 'dist/apps');
/** The child processes' modes (bench/capacity/clients.js): the load client, the RabbitMQ ceiling. */
const CLIENTS_SCRIPT = path.join(__dirname, 'clients.js');

const DATABASE = 'taskhub_capacity';
const DATABASE_URL = `postgres://postgres@localhost:5432/${DATABASE}`;
const RABBITMQ_URL = 'amqp://guest:guest@localhost:5672';
const QUEUE_PREFIX = 'taskhub-capacity.';
const PORTS = { api: 3980, worker: 3981, redis: 6390 };
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

/** The model's assumptions. */
const TARGET_UTILISATION = 0.7;
const SCALES = [10_000, 100_000];
const HIT_RATIO = 0.9;
const MIXES = [
  { label: 'read-heavy', items: 0.8, lists: 0.15, writes: 0.05 },
  { label: 'write-heavy', items: 0.65, lists: 0.15, writes: 0.2 },
];

module.exports = {
  API_ENTRY,
  CLIENTS_SCRIPT,
  DATABASE,
  DATABASE_URL,
  DIST,
  DRAIN_TIMEOUT_MS,
  HIT_RATIO,
  IDLE_MS,
  LOAD_CPU,
  MEASUREMENTS,
  MIXES,
  OUTPUT,
  OVERRIDE_PER_MINUTE,
  PASSWORD,
  PG_ADMIN_URL,
  PORTS,
  QUEUE_PREFIX,
  RABBITMQ_URL,
  READY_TIMEOUT_MS,
  ROOT,
  RUN_DIR,
  SCALES,
  SERVER_CPU,
  STATS_SETTLE_MS,
  TARGET_UTILISATION,
  WORKER_ENTRY,
};
