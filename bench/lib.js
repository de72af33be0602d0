// @ts-check
'use strict';

/** Helpers shared by bench/run.js (`npm run bench`) and bench/capacity/ (`npm run bench:capacity`). */
const net = require('node:net');
const { Client } = require('pg');

/** Whether nothing listens on `port` (any address). */
function portIsFree(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () =>
      server.close(() => resolve(true)),
    );
  });
}

/** `fn` with a Postgres client connected to `url`, closed after. */
async function withPg(url, fn) {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

module.exports = { portIsFree, withPg };
