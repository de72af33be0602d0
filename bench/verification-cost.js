// @ts-check
'use strict';

/**
 * Part of `npm run bench`: what verifying a credential costs per request, measured call by call
 * in the api's own code (the production build), so that "key verification adds at most 1 ms to
 * p99" can be judged on the verification itself; under wrk, two scenarios' p99s differ by more
 * than that from run to run on this machine whatever they do.
 *
 * Builds the api's AccessTokenService and ApiKeyVerifier (with its database, Redis subscription
 * and last-use recording, as in the api), warms each with the seeded credential, then times
 * CALLS verifications of each, interleaved in batches. Prints JSON: p50, p99 and max in µs.
 *
 *   JWT_SECRET=... DATABASE_URL=... BENCH_TOKEN=... BENCH_API_KEY=... node bench/verification-cost.js
 */
const path = require('node:path');
const Redis = require('ioredis').default;
const { DataSource } = require('typeorm');

const DIST = path.join(__dirname, '../dist/apps/api/libs');
const { loadConfig } = require(path.join(DIST, 'config/src'));
const { buildDataSourceOptions } = require(path.join(DIST, 'database/src'));
const { AccessTokenService } = require(path.join(DIST, 'auth/src/access-token.service'));
const { ApiKeyUsage } = require(path.join(DIST, 'auth/src/api-key-usage'));
const { ApiKeyVerifier } = require(path.join(DIST, 'auth/src/api-key-verifier'));

const CALLS = 200_000;
const BATCH = 1_000;

function summary(samples) {
  const sorted = Float64Array.from(samples).sort();
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50Us: at(0.5), p99Us: at(0.99), maxUs: sorted[sorted.length - 1] };
}

async function main() {
  const { BENCH_TOKEN: token, BENCH_API_KEY: key } = process.env;
  if (!token || !key) throw new Error('set BENCH_TOKEN and BENCH_API_KEY');
  const config = loadConfig();
  const dataSource = await new DataSource(
    buildDataSourceOptions(config, 'taskhub-bench-verify'),
  ).initialize();
  const redis = new Redis(config.redis.url, { keyPrefix: config.redis.keyPrefix });
  const usage = new ApiKeyUsage(dataSource);
  const verifier = new ApiKeyVerifier(config, dataSource, redis, usage);
  const tokens = new AccessTokenService(config);
  verifier.onModuleInit();
  try {
    // Subscribed, then warm: the state of an api instance that has seen the key before.
    await new Promise((resolve) => setTimeout(resolve, 500));
    if (!(await verifier.verify(key))) throw new Error('the API key does not verify');
    if (!tokens.verify(token)) throw new Error('the access token does not verify');

    const jwt = new Float64Array(CALLS);
    const apiKey = new Float64Array(CALLS);
    for (let done = 0; done < CALLS; done += BATCH) {
      for (let i = done; i < done + BATCH; i += 1) {
        const start = process.hrtime.bigint();
        tokens.verify(token);
        jwt[i] = Number(process.hrtime.bigint() - start) / 1000;
      }
      for (let i = done; i < done + BATCH; i += 1) {
        const start = process.hrtime.bigint();
        await verifier.verify(key);
        apiKey[i] = Number(process.hrtime.bigint() - start) / 1000;
      }
    }
    process.stdout.write(
      `${JSON.stringify({ calls: CALLS, jwt: summary(jwt), apiKey: summary(apiKey) })}\n`,
    );
  } finally {
    verifier.onApplicationShutdown();
    await usage.onApplicationShutdown();
    redis.disconnect();
    await dataSource.destroy();
  }
}

main().catch((error) => {
  process.stderr.write(`verification-cost: ${error.stack ?? error}\n`);
  process.exit(1);
});
