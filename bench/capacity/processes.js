// @ts-check
'use strict';

/** The child processes of `npm run bench:capacity` beyond bench/processes.js's registry: its log
 * lines, starting one pinned with its log in bench/.run/<name>.log, and waiting until it is ready. */
const path = require('node:path');
const { BenchError, exited, sleep, startPinned: startPinnedTo, tail } = require('../processes');
const { READY_TIMEOUT_MS, RUN_DIR } = require('./settings');

/** @param {string} message */
const log = (message) => process.stdout.write(`[capacity] ${message}\n`);
/** @param {string[]} lines */
const loud = (lines) => process.stdout.write(`\n!!! ${lines.join('\n!!! ')}\n\n`);

/** @param {string} name */
const logFileOf = (name) => path.join(RUN_DIR, `${name}.log`);

/**
 * A long-running process pinned to `cpu`, its output to bench/.run/<name>.log.
 * @param {string} name
 * @param {string} cpu
 * @param {string[]} args
 * @param {NodeJS.ProcessEnv} [env]
 */
function startPinned(name, cpu, args, env = process.env) {
  return Object.assign(startPinnedTo(cpu, args, env, logFileOf(name)), { logName: name });
}

/**
 * @param {ReturnType<typeof startPinned>} child
 * @param {() => Promise<boolean>} check
 */
async function untilReady(child, check) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited(child)) break;
    if (await check().catch(() => false)) return;
    await sleep(250);
  }
  const end = tail(logFileOf(child.logName), 20);
  throw new BenchError(`${child.logName} did not get ready; the end of its log:\n${end}`);
}

/** @param {string} url */
const answers200 = (url) => async () =>
  (await fetch(url, { signal: AbortSignal.timeout(2000) })).status === 200;

module.exports = { answers200, log, loud, startPinned, untilReady };
