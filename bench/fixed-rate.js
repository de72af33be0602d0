// @ts-check
'use strict';

/**
 * An open-loop load at a fixed rate, for latency budgets (bench/run.js runs it pinned to the load
 * core): request i is due at start + i / rate whether or not earlier ones have been answered, and
 * its latency runs from when it was due, so a stall shows in the figures rather than slowing the
 * load down (wrk, a closed loop, keeps every connection busy: at saturation its p99 is queueing).
 *
 *   node bench/fixed-rate.js <json>   with {url, method, headers, body, rate, seconds, status}
 *
 * Prints one line of JSON: {requests, unexpected, rps, p50Ms, p99Ms, maxMs}; `unexpected` counts
 * answers other than `status` (any 2xx or 3xx when it is null) and failed requests.
 */
const http = require('node:http');

const spec = JSON.parse(process.argv[2]);
const target = new URL(spec.url);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const body = spec.body ? Buffer.from(spec.body) : undefined;
const headers = { ...spec.headers, ...(body ? { 'content-length': body.length } : {}) };

const latencies = [];
let unexpected = 0;

function send(dueAt) {
  return new Promise((resolve) => {
    const request = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname + target.search,
        method: spec.method,
        headers,
        agent,
      },
      (response) => {
        response.resume();
        response.on('end', () => {
          latencies.push(performance.now() - dueAt);
          const ok = spec.status
            ? response.statusCode === spec.status
            : response.statusCode >= 200 && response.statusCode < 400;
          if (!ok) unexpected += 1;
          resolve();
        });
      },
    );
    request.on('error', () => {
      unexpected += 1;
      resolve();
    });
    request.end(body);
  });
}

async function main() {
  const total = Math.round(spec.rate * spec.seconds);
  const startedAt = performance.now();
  const inFlight = [];
  for (let i = 0; i < total; i += 1) {
    const dueAt = startedAt + (i * 1000) / spec.rate;
    const wait = dueAt - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    // Sent late, the latency counts the lateness (it is due then); sent up to 1 ms early (not
    // worth a timer), it counts from the sending.
    inFlight.push(send(Math.min(dueAt, performance.now())));
  }
  await Promise.all(inFlight);
  const elapsedS = (performance.now() - startedAt) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  process.stdout.write(
    `${JSON.stringify({
      requests: total,
      unexpected,
      rps: total / elapsedS,
      p50Ms: at(0.5),
      p99Ms: at(0.99),
      maxMs: latencies[latencies.length - 1],
    })}\n`,
  );
  agent.destroy();
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
