// @ts-check
'use strict';

/** Building and starting what `npm run bench` loads: the api and its variants, a worker, a fleet
 * behind nginx, the webhook receiver, the Postgres fault proxy. */
const fs = require('node:fs');
const path = require('node:path');
const { NODE_RUNTIME_FLAGS } = require('../scripts/runtime');
const { descendants } = require('./measure');
const {
  BenchError,
  exited,
  hasCommand,
  log,
  loud,
  request,
  run,
  sleep,
  startPinned,
  state,
  tail,
  waitFor200,
} = require('./processes');
const {
  API_ENTRY,
  API_ENV,
  FLEET_READY_TIMEOUT_MS,
  FLEET_SCRIPT,
  LOAD_CPU,
  OVERRIDE_PER_MINUTE,
  RECEIVER_SCRIPT,
  ROOT,
  RUN_DIR,
  SERVER_CPU,
  WORKER_ENTRY,
} = require('./settings');

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

module.exports = {
  build,
  ensureWrk,
  fleetPids,
  measureVerification,
  openPostgresBreaker,
  proxyToPostgres,
  startApi,
  startFleet,
  startReceiver,
  startWorker,
};
