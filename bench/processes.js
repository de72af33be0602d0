// @ts-check
'use strict';

/** The child processes `npm run bench` (and `npm run bench:capacity`) starts, and small helpers
 * around them: start pinned, wait until ready, stop, the registry cleanup() empties, and runMain. */
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { portIsFree } = require('./lib');
const { READY_TIMEOUT_MS, ROOT } = require('./settings');

class BenchError extends Error {}

const log = (message) => process.stdout.write(`[bench] ${message}\n`);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const resolveField = (field, ctx) => (typeof field === 'function' ? field(ctx) : field);

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
/** A signal arrived: no new child process starts, and the run exits 130. */
const interrupt = () => {
  interrupted = true;
};
const wasInterrupted = () => interrupted;

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

/**
 * @param {string} url
 * @param {{ method?: string, headers?: Record<string, string>, body?: string }} [options]
 */
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

/**
 * Runs `main` as the process's work: on SIGINT or SIGTERM, no new child starts, cleanup() runs and
 * the process exits 130; when `main` fails, `failure` and the error's message (its stack unless a
 * BenchError) go to stderr and the exit status is 1; cleanup() runs in any case. Children still
 * running when the process exits anyway are killed.
 * @param {() => Promise<void>} main
 * @param {() => Promise<void>} cleanup
 * @param {{ say: (message: string) => void, failure: string }} how
 */
function runMain(main, cleanup, { say, failure }) {
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      interrupt();
      say(`${signal}: cleaning up...`);
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
        if (wasInterrupted()) return 130;
        const message =
          error instanceof BenchError ? error.message : (error.stack ?? String(error));
        process.stderr.write(`\n${failure}: ${message}\n`);
        return 1;
      },
    )
    .then(async (code) => {
      await cleanup();
      if (!wasInterrupted()) process.exit(code);
    });
}

// ---------------------------------------------------------------------------------------------
// Steps

async function hasCommand(name) {
  return (await run('sh', ['-c', `command -v ${name}`])).code === 0;
}

/** What cleanup() stops and closes, filled in as the run starts things. */
const state = {
  apis: [],
  proxies: [],
  baseline: null,
  seed: null,
  databaseCreated: false,
  webhooksUsed: false,
};

module.exports = {
  BenchError,
  children,
  exited,
  freePort,
  hasCommand,
  interrupt,
  log,
  loud,
  request,
  resolveField,
  run,
  runMain,
  sleep,
  startPinned,
  state,
  stop,
  tail,
  track,
  waitFor200,
  wasInterrupted,
};
