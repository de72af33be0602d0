// @ts-check
'use strict';

/** The load generators: wrk (a closed loop of 50 connections, bench/request.lua or rotate.lua)
 * and bench/fixed-rate.js (an open loop at a fixed rate), and reading their figures. */
const path = require('node:path');
const { BenchError, resolveField, run } = require('./processes');
const {
  FIXED_RATE_SCRIPT,
  LOAD_CPU,
  REQUEST_SCRIPT,
  WRK_CONNECTIONS,
  WRK_THREADS,
} = require('./settings');

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

module.exports = {
  fixedRate,
  requestOf,
  wrk,
};
