// @ts-check
'use strict';

/** The capacity model: from the measured costs and ceilings, what a mix of requests at a given
 * rate needs of each part, and which part gives first. */
const { HIT_RATIO, TARGET_UTILISATION } = require('./settings');

/** The shares of the request types in a mix. */
function sharesOf(mix) {
  return {
    'item-hit': mix.items * HIT_RATIO,
    'item-miss': mix.items * (1 - HIT_RATIO),
    'list-hit': mix.lists * HIT_RATIO,
    'list-miss': mix.lists * (1 - HIT_RATIO),
    post: mix.writes / 2,
    patch: mix.writes / 2,
  };
}

const positive = (v) => Math.max(0, v);

/** A figure of the mix: the request types' figures weighted by their shares. */
const weighted = (mix, m) => (field) =>
  Object.entries(sharesOf(mix)).reduce((sum, [key, share]) => sum + share * field(m.costs[key]), 0);

/** What one node of each part, as measured here, carries of the mix (req/s). */
function perNode(mix, m) {
  const per = weighted(mix, m);
  const { postgres: pg, rabbit } = m.ceilings;
  const pgCore = 1e6 / per((c) => positive(c.pgUs));
  return {
    api: 1e6 / per((c) => c.apiUs),
    redis: 1e6 / per((c) => positive(c.redisUs)),
    pgCore,
    pgCores: Math.max(pg.read.cores, pg.write.cores),
    pg: Math.min(
      pgCore * Math.max(pg.read.cores, pg.write.cores),
      pg.write.tps / (mix.writes + 1 / m.logBatchSize),
    ),
    rabbit:
      1 /
      (per((c) => positive(c.events)) / rabbit.event.rate + 1 / m.logBatchSize / rabbit.batch.rate),
  };
}

function fleet(mix, rate, m) {
  const per = weighted(mix, m);
  const apiCores = (rate * per((c) => c.apiUs)) / 1e6 / TARGET_UTILISATION;
  const workerCores = (rate * per((c) => positive(c.workerUs))) / 1e6 / TARGET_UTILISATION;
  const apis = Math.ceil(apiCores);
  const workers = Math.ceil(workerCores);
  const writes = rate * mix.writes;
  // Each write's cache invalidation is published to every api instance; one was measured.
  const redisUs =
    rate * per((c) => positive(c.redisUs)) +
    apis * Math.max(0, m.idleApi.values.redisUs - m.redisAloneUs) +
    writes * (apis - 1) * m.ceilings.redis.deliveryUs;
  const redisCommands = rate * per((c) => positive(c.redisCommands)) + apis * m.idleApi.commands;
  const decisions = rate;
  // Postgres: its CPU, against the cores it kept busy at saturation here; and the commits that
  // write (each write request's transaction, each request-log batch's), against the POST's.
  const pg = m.ceilings.postgres;
  const isMiss = (c) => (c.type.readTx ?? 0) > 0;
  const tx = rate * per((c) => positive(c.tx)) + apis * m.idleApi.tx + workers * m.idleWorkerTx;
  const missTx = rate * per((c) => (isMiss(c) ? positive(c.tx) : 0));
  const pgCores =
    (rate * per((c) => positive(c.pgUs)) + apis * positive(m.idleApi.values.pgUs)) / 1e6;
  const missCores = (rate * per((c) => (isMiss(c) ? positive(c.pgUs) : 0))) / 1e6;
  const batches = rate / m.logBatchSize;
  const commits = writes + batches;
  const capacity = Math.max(pg.read.cores, pg.write.cores);
  const primary = Math.max(pgCores / capacity, commits / pg.write.tps);
  const primaryWithReplicas = Math.max((pgCores - missCores) / capacity, commits / pg.write.tps);
  const events = rate * per((c) => positive(c.events));
  const load = {
    Redis: redisUs / 1e6,
    'Postgres primary': primary,
    RabbitMQ: events / m.ceilings.rabbit.event.rate + batches / m.ceilings.rabbit.batch.rate,
  };
  const first = Object.entries(load).sort((a, b) => b[1] - a[1])[0][0];
  return {
    ...{ rate, apiCores, apis, workerCores, workers, redisUs, redisCommands, decisions },
    ...{ tx, missTx, pgCores, missCores, commits, primary, primaryWithReplicas, events, batches },
    ...{ load, first },
  };
}

const NEXT_STEP = {
  Redis:
    'Redis Cluster: the rate limiter and cache keys are per client and per owner, so they shard ' +
    'by hash slot as they are (each script touches one key); the cache invalidation channel ' +
    'becomes sharded pub/sub (SPUBLISH, Redis 7) or per-shard channels, since a plain PUBLISH ' +
    'reaches every instance through every node.',
  'Postgres primary':
    'read replicas (`DATABASE_REPLICA_URLS`) take the cache misses (the "of which" above); the ' +
    'writes stay on the primary: a larger one (cores; faster WAL storage, as every write ' +
    'commits with fsync), then tasks and the outbox partitioned by owner over several primaries ' +
    "(a write touches one owner's rows). Per write, the worker's fan-out of its event is a " +
    'transaction of its own even for an owner without webhooks: knowing which owners have ' +
    'webhooks would save it.',
  RabbitMQ:
    'more nodes with the queues spread over them (a queue lives on one node: split task-events ' +
    'by owner into several queues, as quorum queues for replication), and larger request-log ' +
    'batches (`REQUEST_LOG_BATCH_SIZE`).',
};

module.exports = { NEXT_STEP, fleet, perNode, sharesOf };
