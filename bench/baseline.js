'use strict';

/**
 * The baseline for `npm run bench`: bare Fastify, one GET route answering the same JSON body the
 * api returned for the benchmarked task. The body is parsed once and serialised on every request,
 * as the api has to, so the difference measured is the api's pipeline, not the payload.
 *
 *   BENCH_BASELINE_PORT=3991 BENCH_BASELINE_BODY_FILE=bench/.run/task.json node bench/baseline.js
 */
const { readFileSync } = require('node:fs');
const fastify = require('fastify');

const port = Number(process.env.BENCH_BASELINE_PORT);
const bodyFile = process.env.BENCH_BASELINE_BODY_FILE;
if (!Number.isInteger(port) || port <= 0 || !bodyFile) {
  process.stderr.write('baseline: set BENCH_BASELINE_PORT and BENCH_BASELINE_BODY_FILE\n');
  process.exit(2);
}
const body = JSON.parse(readFileSync(bodyFile, 'utf8'));

const app = fastify({ logger: false });
app.get('/v1/tasks/:id', () => body);

app.listen({ port, host: '127.0.0.1' }).then(
  () => process.stdout.write(`baseline listening on http://127.0.0.1:${port}\n`),
  (error) => {
    process.stderr.write(`baseline failed to start: ${String(error)}\n`);
    process.exit(1);
  },
);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
