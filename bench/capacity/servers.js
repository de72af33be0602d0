// @ts-check
'use strict';

/** Building and starting what `npm run bench:capacity` measures: the apps' build, a redis-server
 * of its own, the api and the worker. */
const fs = require('node:fs');
const path = require('node:path');
const { NODE_RUNTIME_FLAGS } = require('../../scripts/runtime');
const { BenchError, freePort, run } = require('../processes');
const { answers200, log, startPinned, untilReady } = require('./processes');
const {
  API_ENTRY,
  DATABASE_URL,
  LOAD_CPU,
  PORTS,
  QUEUE_PREFIX,
  RABBITMQ_URL,
  RUN_DIR,
  SERVER_CPU,
  WORKER_ENTRY,
} = require('./settings');

async function build() {
  log('building the apps (npm run build)...');
  const result = await run('npm', ['run', 'build']);
  fs.writeFileSync(path.join(RUN_DIR, 'capacity-build.log'), result.stdout + result.stderr);
  if (result.code !== 0) {
    throw new BenchError('npm run build failed: see bench/.run/capacity-build.log');
  }
}

async function startRedis(s) {
  const port = await freePort(PORTS.redis);
  log(`starting a redis-server of our own on :${port}, pinned to core ${LOAD_CPU}...`);
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  s.redisServer = startPinned('capacity-redis', LOAD_CPU, ['redis-server', ...args]);
  s.redisUrl = `redis://127.0.0.1:${port}`;
  const Redis = require('ioredis').default;
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

module.exports = { build, startApi, startRedis, startWorker };
