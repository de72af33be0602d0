// @ts-check
'use strict';

/**
 * The child processes of `npm run bench:capacity`, each run pinned to the load core:
 *
 *   node bench/capacity/clients.js load <file>    the load client: the requests of one type, as
 *       the JSON in <file> says ({method, headers, paths, body, base, count, concurrency}), over
 *       keep-alive connections; prints {seconds, statuses, cache}
 *   node bench/capacity/clients.js rabbit <json>  the RabbitMQ ceiling ({queue, size, seconds,
 *       inFlight}): persistent messages, confirms, acks; prints what it sent and consumed
 */
const fs = require('node:fs');
const http = require('node:http');
const { sleep } = require('../processes');
const { RABBITMQ_URL } = require('./settings');

function count(into, key) {
  into[key] = (into[key] ?? 0) + 1;
}

async function loadMode(file) {
  const spec = JSON.parse(fs.readFileSync(file, 'utf8'));
  const target = new URL(spec.base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.concurrency });
  const statuses = {};
  const cache = {};
  const one = (i) =>
    new Promise((resolve) => {
      const body =
        spec.body === undefined ? undefined : Buffer.from(spec.body.replaceAll('{i}', String(i)));
      const headers = { ...spec.headers, ...(body ? { 'content-length': body.length } : {}) };
      const request = http.request(
        {
          host: target.hostname,
          port: target.port,
          method: spec.method,
          path: spec.paths[i % spec.paths.length],
          headers,
          agent,
        },
        (response) => {
          response.resume();
          response.on('end', () => {
            count(statuses, response.statusCode);
            count(cache, response.headers['x-cache'] ?? 'none');
            resolve();
          });
        },
      );
      request.on('error', (/** @type {NodeJS.ErrnoException} */ error) => {
        count(statuses, error.code ?? 'error');
        resolve();
      });
      request.end(body);
    });
  let next = 0;
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: spec.concurrency }, async () => {
      while (next < spec.count) await one(next++);
    }),
  );
  const seconds = (performance.now() - startedAt) / 1000;
  agent.destroy();
  process.stdout.write(`${JSON.stringify({ seconds, statuses, cache })}\n`);
}

async function rabbitMode(spec) {
  const amqp = require('amqplib');
  const [publishing, consuming] = [
    await amqp.connect(RABBITMQ_URL),
    await amqp.connect(RABBITMQ_URL),
  ];
  try {
    const publisher = await publishing.createConfirmChannel();
    await publisher.assertQueue(spec.queue, { durable: true });
    await publisher.purgeQueue(spec.queue);
    const consumer = await consuming.createChannel();
    await consumer.prefetch(20);
    let consumed = 0;
    const { consumerTag } = await consumer.consume(spec.queue, (message) => {
      if (message === null) return; // cancelled
      consumed += 1;
      consumer.ack(message);
    });
    const body = Buffer.from(JSON.stringify({ data: 'x'.repeat(spec.size - 11) }));
    const publish = () =>
      new Promise((resolve, reject) =>
        publisher.sendToQueue(spec.queue, body, { persistent: true }, (error) =>
          error ? reject(error) : resolve(),
        ),
      );
    let published = 0;
    const startedAt = performance.now();
    const until = startedAt + spec.seconds * 1000;
    await Promise.all(
      Array.from({ length: spec.inFlight }, async () => {
        while (performance.now() < until) {
          await publish();
          published += 1;
        }
      }),
    );
    while (consumed < published && performance.now() < until + 30_000) await sleep(5);
    const seconds = (performance.now() - startedAt) / 1000;
    await consumer.cancel(consumerTag);
    await publisher.deleteQueue(spec.queue);
    const version = publishing.connection.serverProperties?.version;
    process.stdout.write(
      `${JSON.stringify({ ...spec, published, consumed, rate: consumed / seconds, version })}\n`,
    );
  } finally {
    await Promise.all([publishing.close(), consuming.close()].map((p) => p.catch(() => undefined)));
  }
}

if (process.argv[2] === 'load') {
  loadMode(process.argv[3]).catch((error) => {
    process.stderr.write(`${error.stack}\n`);
    process.exit(1);
  });
} else if (process.argv[2] === 'rabbit') {
  rabbitMode(JSON.parse(process.argv[3])).then(
    () => process.exit(0),
    (error) => {
      process.stderr.write(`${error.stack}\n`);
      process.exit(1);
    },
  );
} else {
  process.stderr.write('usage: node bench/capacity/clients.js load <file> | rabbit <json>\n');
  process.exit(1);
}
