// @ts-check
'use strict';

/**
 * The webhook receiver of `npm run bench`: answers every POST with 204 and counts them, as a
 * healthy subscriber would. GET /count answers how many it has received so far.
 *
 *   BENCH_RECEIVER_PORT=3997 node bench/receiver.js
 */
const { createServer } = require('node:http');

const port = Number(process.env.BENCH_RECEIVER_PORT);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('receiver: set BENCH_RECEIVER_PORT\n');
  process.exit(2);
}
let received = 0;
const server = createServer((request, response) => {
  if (request.method === 'GET') {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ received }));
    return;
  }
  request.resume();
  request.on('end', () => {
    received += 1;
    response.writeHead(204).end();
  });
});
server.listen(port, '127.0.0.1', () =>
  process.stdout.write(`receiver listening on http://127.0.0.1:${port}\n`),
);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => server.close(() => process.exit(0)));
}
