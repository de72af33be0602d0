// @ts-check
'use strict';

/** One measurement of a scenario: the probe, the warm-up, the measured run, and what it cost the
 * server (CPU per request from /proc, Redis commands per request, peak RSS). */
const fs = require('node:fs');
const { fixedRate, requestOf, wrk } = require('./load');
const { BenchError, log, loud, request } = require('./processes');
const { cpuText, fmt } = require('./report');
const { BEHIND_P50_MS, MEASURE_SECONDS } = require('./settings');

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
  /** @type {Record<string, any>} */
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
/** Closes the connection redisCommands() opened, if it did. */
const closeRedis = () => redisClient?.disconnect();

/**
 * Commands the shared Redis has processed so far (INFO stats, which counts a command once it has
 * run): the difference over a run, less the one INFO that came first, is what the servers sent.
 */
async function redisCommands() {
  const Redis = require('ioredis').default;
  redisClient ??= new Redis(process.env.REDIS_URL || 'redis://127.0.0.1:6379');
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

/** A process's peak resident set so far (VmHWM), in MiB. */
function peakRssMiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

module.exports = {
  closeRedis,
  descendants,
  peakRssMiB,
  runScenarios,
};
