// A fresh database, Redis key prefix and RabbitMQ queue prefix for this run, so runs never see
// each other's data. The database is created empty; the api migrates it when it first starts.
// (Plain JS: jest loads global setup outside the @app/* module mapping.)
const { randomBytes } = require('node:crypto');
const { Client } = require('pg');

module.exports = async function globalSetup() {
  const runId = `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const base = new URL(
    process.env.TEST_DATABASE_URL || 'postgres://postgres@localhost:5432/postgres',
  );
  const name = `taskhub_test_${runId}`;
  const admin = new Client({ connectionString: base.toString() });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(base.toString());
  url.pathname = `/${name}`;
  process.env.DATABASE_URL = url.toString();
  process.env.REDIS_KEY_PREFIX = `taskhub-test:${runId}:`;
  process.env.RABBITMQ_QUEUE_PREFIX = `taskhub-test.${runId}.`;
  process.env.NODE_ENV = 'test';
  process.env.LOG_LEVEL = process.env.LOG_LEVEL || 'silent';
  // Every spec's requests come from 127.0.0.1 and share this run's Redis: with the limiter on,
  // the specs would throttle one another. The rate-limit specs turn it on for their own apps.
  process.env.RATE_LIMIT_ENABLED = 'false';
  // Nothing consumes the run's request-logs queue: test/request-logs.e2e-spec.ts turns the
  // request log on for its own api and worker, with queues of its own.
  process.env.REQUEST_LOG_ENABLED = 'false';
  // Specs that fire hundreds of requests at an in-process api block its event loop by design;
  // shedding would turn them away. test/load-shedding.e2e-spec.ts turns it on for its own app.
  process.env.LOAD_SHED_EVENT_LOOP_DELAY_MS = '0';
  // Likewise the handler timeout: hundreds of concurrent logins (scrypt, on two cores) can take
  // longer than its 10 s, and a 503 would leave their hashing running into the next spec (its
  // connections then wait behind it in libuv's thread pool). test/timeouts.e2e-spec.ts sets its
  // own.
  process.env.HTTP_HANDLER_TIMEOUT_MS = '120000';
  process.env.TASKHUB_TEST_RUN = JSON.stringify({ runId, database: name, admin: base.toString() });
};
