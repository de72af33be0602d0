// @ts-check
'use strict';

/** The report of `npm run bench:capacity`: the model from the measurements, its tables and text,
 * written to bench/CAPACITY.md, and its summary printed. */
const fs = require('node:fs');
const os = require('node:os');
const { fleet, NEXT_STEP, perNode, sharesOf } = require('./model');
const { log } = require('./processes');
const {
  DATABASE,
  HIT_RATIO,
  IDLE_MS,
  LOAD_CPU,
  MIXES,
  OUTPUT,
  QUEUE_PREFIX,
  SCALES,
  SERVER_CPU,
  STATS_SETTLE_MS,
  TARGET_UTILISATION,
} = require('./settings');

const n0 = (v) => Math.round(v).toLocaleString('en-US').replaceAll(',', ' ');
const fix = (v, digits) =>
  Math.abs(v) < 0.5 * 10 ** -digits ? (0).toFixed(digits) : v.toFixed(digits);
const range = (a, b, digits) => {
  const [low, high] = [fix(Math.min(a, b), digits), fix(Math.max(a, b), digits)];
  return low === high ? low : `${low}–${high}`;
};
const pct = (v) => `${(v * 100).toFixed(0)} %`;
const table = (head, rows) =>
  [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i ? '---:' : '---')).join('|')}|`]
    .concat(rows.map((row) => `| ${row.join(' | ')} |`))
    .join('\n');

function costTable(m) {
  return table(
    [
      'request',
      'api CPU µs',
      'worker CPU µs',
      'PG tx',
      'PG CPU µs',
      'Redis commands',
      'Redis CPU µs',
      'RabbitMQ messages',
    ],
    m.measured.map(({ type, cost: c }) => [
      type.name,
      fix(c.apiUs, 0),
      fix(c.workerUs, 0),
      fix(c.tx, 3),
      fix(c.pgUs, 0),
      fix(c.redisCommands, 2),
      fix(c.redisUs, 1),
      `${fix(c.messages, 4)} (${fix(c.events, 3)} + ${fix(c.logBatches, 4)})`,
    ]),
  );
}

function commandTable(m) {
  return table(
    ['request', 'Redis commands per request (INFO commandstats; ≥ 0.01)'],
    m.measured.map(({ type, cost }) => [
      type.name,
      Object.entries(cost.byCommand)
        .filter(([, v]) => v >= 0.01)
        .sort((a, b) => b[1] - a[1])
        .map(([name, v]) => `${name.toUpperCase()} ${v.toFixed(2)}`)
        .join(', '),
    ]),
  );
}

function runTable(m) {
  return table(
    ['request', 'requests', 'concurrency', 'seconds', 'req/s', 'answers', 'X-Cache'],
    m.measured.map(({ type, n, outcome: o }) => [
      type.name,
      String(n),
      String(type.concurrency),
      o.seconds.toFixed(1),
      n0(n / o.seconds),
      JSON.stringify(o.statuses).replace(/[{}"]/g, ''),
      JSON.stringify(o.cache).replace(/[{}"]/g, ''),
    ]),
  );
}

function idleTable(m) {
  const row = (label, r) => [
    label,
    fix(r.values.apiUs / 1e3, 1),
    fix(r.values.workerUs / 1e3, 1),
    fix(r.tx, 1),
    fix(r.commands, 1),
    fix(r.values.redisUs / 1e3, 2),
  ];
  return table(
    ['idle, per second', 'api CPU ms', 'worker CPU ms', 'PG tx', 'Redis commands', 'Redis CPU ms'],
    [
      ['redis-server alone', '', '', '', '', fix(m.redisAloneUs / 1e3, 2)],
      row('the api alone', m.idleApi),
      row('the api and the worker', m.idle),
      ['so the worker', '', '', fix(m.idleWorkerTx, 1), '', ''],
    ],
  );
}

function ceilingText(m) {
  const r = m.ceilings.redis;
  const redisRows = r.results.map((x) => [x.label, n0(x.rps), fix(x.us, 1), n0(1e6 / x.us)]);
  const pg = m.ceilings.postgres;
  const mq = m.ceilings.rabbit;
  return [
    table(
      ['Redis (one redis-server)', 'ops/s here', 'Redis CPU µs per op', 'ops/s of a whole core'],
      redisRows,
    ),
    '',
    'Redis runs commands on one thread: its ceiling is a core, the last column (a million µs over',
    'its CPU time per op). The ops/s measured here are less: redis-server shared its core with',
    'whatever else ran on it.',
    '',
    `One more subscriber costs Redis ${fix(r.deliveryUs, 2)} µs per PUBLISH (the difference of the two PUBLISH rows, over 20).`,
    '',
    table(
      [
        'Postgres 15 (fsync and synchronous_commit on)',
        'transactions/s',
        'backend CPU µs per tx',
        'backend cores busy',
      ],
      [
        ["the POST's transaction (INSERT task, INSERT outbox event)", pg.write],
        ["the cache miss's read (`GET /v1/tasks/:id`'s statement)", pg.read],
      ].map(([label, x]) => [label, n0(x.tps), fix(x.us, 0), x.cores.toFixed(2)]),
    ),
    '',
    "Postgres's ceiling in the model is both: its backends' CPU against the most cores they kept",
    'busy here (the larger of the two runs), and the commits that write against the first row.',
    '',
    table(
      ['RabbitMQ (persistent, publisher confirms, consumed with acks)', 'messages/s'],
      [
        [`${mq.event.size} B: a task event`, n0(mq.event.rate)],
        [
          `${mq.batch.size} B: a request-log batch (${mq.sizes.entries} entries, ${n0(mq.batch.size / mq.sizes.entries)} B each)`,
          n0(mq.batch.rate),
        ],
      ],
    ),
  ].join('\n');
}

function modelTables(m) {
  return m.models
    .map(({ mix, rows }) => {
      const shares = sharesOf(mix);
      const shareText = m.measured
        .filter(({ type }) => shares[type.key])
        .map(({ type }) => `${type.name} ${pct(shares[type.key])}`)
        .join(', ');
      const line = (label, f) => [label, ...rows.map(f)];
      const node = perNode(mix, m);
      return [
        `**${mix.label}**: ${pct(mix.items)} task reads, ${pct(mix.lists)} list pages, ${pct(mix.writes)} writes (half POST, half PATCH), reads ${pct(HIT_RATIO)} cache hits: ${shareText}.`,
        '',
        table(
          ['', ...rows.map((r) => `${n0(r.rate)} req/s`)],
          [
            line(
              `api cores at ${pct(TARGET_UTILISATION)} (one process each)`,
              (r) => `${r.apiCores.toFixed(1)} → ${r.apis}`,
            ),
            line(
              `worker cores at ${pct(TARGET_UTILISATION)}`,
              (r) => `${r.workerCores.toFixed(1)} → ${r.workers}`,
            ),
            line('Redis commands/s', (r) => n0(r.redisCommands)),
            line(
              'Redis: rate-limit decisions/s (share of a core of EVALSHA alone)',
              (r) =>
                `${n0(r.decisions)} (${pct((r.decisions * m.ceilings.redis.evalsha.us) / 1e6)})`,
            ),
            line('Redis: CPU of its one core', (r) => pct(r.load.Redis)),
            line(
              'Postgres transactions/s (of which cache-miss reads)',
              (r) => `${n0(r.tx)} (${n0(r.missTx)})`,
            ),
            line(
              'Postgres backend CPU, cores (of which cache misses)',
              (r) => `${r.pgCores.toFixed(1)} (${r.missCores.toFixed(1)})`,
            ),
            line(
              'Postgres commits that write, /s (share of the write ceiling)',
              (r) => `${n0(r.commits)} (${pct(r.commits / m.ceilings.postgres.write.tps)})`,
            ),
            line(
              'Postgres primary: share of its ceiling (no replicas → misses on replicas)',
              (r) => `${pct(r.primary)} → ${pct(r.primaryWithReplicas)}`,
            ),
            line(
              'RabbitMQ messages/s: events + log batches (share of its ceiling)',
              (r) => `${n0(r.events)} + ${n0(r.batches)} (${pct(r.load.RabbitMQ)})`,
            ),
            line('shares of the ceilings, highest first', (r) =>
              Object.entries(r.load)
                .sort((a, b) => b[1] - a[1])
                .map(([part, v], i) => (i === 0 ? `**${part} ${pct(v)}**` : `${part} ${pct(v)}`))
                .join(', '),
            ),
          ],
        ),
        '',
        `One node as measured here carries, of this mix: an api core ${n0(node.api)} req/s; ` +
          `Redis ${n0(node.redis)} req/s (its one thread; less the invalidations' fan-out to ` +
          `every api instance); the Postgres primary ${n0(node.pg)} req/s (${n0(node.pgCore)} ` +
          `per core of backend CPU, ${node.pgCores.toFixed(2)} cores here, or its write ` +
          `commits, whichever is less); RabbitMQ ${n0(node.rabbit)} req/s.`,
      ].join('\n');
    })
    .join('\n\n');
}

/** The explanatory part: what the figures say, and what to do at each scale. */
function explanation(m) {
  const cost = Object.fromEntries(m.measured.map(({ type, cost: c }) => [type.key, c]));
  const [low, high] = m.models[0].rows;
  const [lowW, highW] = m.models[1].rows;
  const pgHere = Math.max(m.ceilings.postgres.read.cores, m.ceilings.postgres.write.cores);
  const nodeRead = perNode(m.models[0].mix, m);
  const order = (r) =>
    Object.entries(r.load)
      .sort((a, b) => b[1] - a[1])
      .map(([part, v]) => `${part} ${pct(v)}`);
  const atScales = SCALES.map((rate, i) => {
    const each = m.models.map(({ mix, rows }) => `${mix.label}: ${order(rows[i]).join(' > ')}`);
    return `- At **${n0(rate)} req/s**, ${each.join('; ')}.`;
  }).join('\n');
  const steps = Object.entries(high.load)
    .sort((a, b) => b[1] - a[1])
    .map(([part]) => `- **${part}**: ${NEXT_STEP[part]}`)
    .join('\n');
  const login = cost.login.apiUs;
  return `### Capacity model

\`npm run bench:capacity\` (bench/capacity/, ${Math.ceil(Number(m.meta.minutes))} minutes) measures what one request of each
type costs every part, on the built api and worker as deployed (production, rate limiting with
the bench user's override, cache, request log, a worker draining the outbox and the log), and
the single-node ceilings of Redis, Postgres and RabbitMQ on this machine; bench/CAPACITY.md has
the figures, the method and this model, recomputed by each run. The ceilings are those of one
node sharing **2 cores** with everything else (api, worker, load, other tenants): real servers
are faster; what carries over is the ratios, and which part gives first.

What a request costs (run of ${m.meta.date.slice(0, 10)}; CPU in µs, per request):

${costTable(m)}

The RabbitMQ column is messages consumed by the worker: task events plus request-log batches
(one message carries up to ${m.logBatchSize} requests, so its share per request falls as an
instance gets busier; the model takes 1/${m.logBatchSize}). Redis commands are as Redis counts
them, the commands a script runs included: a rate-limit decision is one EVALSHA and its TIME,
HGETALL, HINCRBY and PEXPIRE. Every request makes exactly one decision.

- The api's CPU is the cost that scales with traffic: a cached read ${fix(cost['item-hit'].apiUs, 0)} µs,
  a miss ${fix(cost['item-miss'].apiUs, 0)} µs, a write ${range(cost.post.apiUs, cost.patch.apiUs, 0)} µs, the bare
  pipeline (\`whoami\`) ${fix(cost.whoami.apiUs, 0)} µs. A login is ${fix(login / 1000, 0)} ms of scrypt:
  100 logins a second take ${fix((100 * login) / 1e6, 1)} cores by themselves.
- Every request, cached or not, costs Redis one rate-limit decision (${fix(m.ceilings.redis.evalsha.us, 0)} µs of
  Redis's one thread at saturation, ${n0(1e6 / m.ceilings.redis.evalsha.us)} a second on a whole core): one
  Redis bounds the whole fleet, whatever the hit ratio.
- Only cache misses and writes reach Postgres; a write is ${range(cost.post.tx, cost.patch.tx, 1)}
  transactions with the worker's (the api's, the event's fan-out, its share of relay passes).

With the **read-heavy** mix (${pct(m.models[0].mix.items)} task reads, ${pct(m.models[0].mix.lists)} list pages,
${pct(m.models[0].mix.writes)} writes, reads ${pct(HIT_RATIO)} cache hits), 10 000 req/s take
**${low.apis} api cores** at ${pct(TARGET_UTILISATION)} and ${low.workers} worker core(s); 100 000 req/s
take **${high.apis} api cores** and ${high.workers} worker cores (the write-heavy mix: ${highW.apis} and ${highW.workers}).
The shared parts, as shares of the single-node ceilings measured here:

${modelTables(m)}

Which part gives first, as shares of one node's ceilings measured here (over 100 %: one such
node no longer suffices):

${atScales}

Postgres's share is against the ${pgHere.toFixed(2)} cores its backends kept busy here (pgbench and
the other tenants had the rest): in cores, the primary needs ${low.pgCores.toFixed(1)} at 10 000 req/s of the read-heavy mix and
${high.pgCores.toFixed(1)} at 100 000 (the write-heavy mix: ${lowW.pgCores.toFixed(1)} and ${highW.pgCores.toFixed(1)}), of which the cache misses, which
replicas can take, are ${low.missCores.toFixed(1)} and ${high.missCores.toFixed(1)}. A primary with more cores moves it back; Redis
cannot move: its commands run on one thread, so past ${n0(nodeRead.redis)} req/s of the read-heavy mix it
must be sharded, whatever the machine. Per write, Postgres spends
${range(cost.post.pgUs, cost.patch.pgUs, 0)} µs of backend CPU (the api's transaction, the worker's fan-out and relay),
against ${fix(m.ceilings.postgres.write.us, 0)} µs for the POST's two INSERTs as pgbench sends them (prepared, in one
transaction). That gap (the worker's fan-out transaction, TypeORM's statements, unnamed and so
parsed and planned on every call, the PATCH's reads of the row) is capacity to win before any is
bought.

The next step for each, in the order they give at 100 000 req/s:

${steps}

Not in the model: logins (above), webhook deliveries (each subscriber adds a delivery job, a
message and an outbound POST per event, measured by \`npm run bench\`), exports, and the api-side
cost of hearing every write's invalidation (each instance hears all of them, one small message
each). The api cores assume one Node process per core, each loaded to ${pct(TARGET_UTILISATION)}.
`;
}

async function writeReport(m) {
  const problems = m.measured.flatMap(({ type, outcome }) =>
    outcome.problems.map((p) => `- ${type.name}: ${p}`),
  );
  const text = `# Capacity

> Generated by \`npm run bench:capacity\` (bench/capacity/); this file is overwritten by each
> run. Absolute figures drift between runs on these shared machines; the model's conclusions
> are what to read.

- Date: ${m.meta.date}; commit ${m.meta.commit}; the run took ${m.meta.minutes} min
- Node ${process.version}, \`nproc\` = ${os.cpus().length}, ${os.cpus()[0]?.model ?? 'unknown CPU'}
- Load average (1, 5, 15 min) before: ${m.meta.loadBefore}; after: ${m.meta.loadAfter}
- ${m.meta.versions}
- BENCH_CAPACITY_SCALE=${m.meta.scale}
${problems.length ? `\n## Problems\n\n${problems.join('\n')}\n` : ''}
${explanation(m)}
## The runs

${runTable(m)}

Request types:

${m.measured.map(({ type }) => `- ${type.name}: ${type.about}`).join('\n')}

Redis commands by request type:

${commandTable(m)}

## Idle costs

What the api and the worker cost by themselves (subtracted from every figure above; in the
model, added per instance):

${idleTable(m)}

The api re-reads the rate-limit overrides every 500 ms and the flags every second, and pings
its two subscribed Redis connections every 100 ms; the worker's outbox relay polls every
\`OUTBOX_POLL_MS\` (200 ms) and counts its backlog every second.

## Ceilings

Single-node, on this shared 2-core machine, with the api and worker stopped:

${ceilingText(m)}

## Method

- The api (\`dist/apps/api\`, \`NODE_ENV=production\`, \`LOG_LEVEL=info\`: one access-log line per
  request, to a file) pinned to core ${SERVER_CPU}; the worker, our own redis-server and the
  load client pinned to core ${LOAD_CPU}; Postgres and RabbitMQ, shared with the machine, not
  pinned. A fresh database \`${DATABASE}\` and queues \`${QUEUE_PREFIX}*\`, dropped and deleted
  after the run.
- Each type: a warm-up pass of every type first (writes first), then, per type, a fixed number
  of requests at a fixed concurrency from a keep-alive client (bench/capacity/clients.js);
  every answer must have the type's status, and the cached and miss types their X-Cache.
- After a type's requests, the worker must have drained (its \`jobs_processed_total\` steady for
  a second, \`outbox_pending\` 0, after the api's request-log flush interval). CPU is the
  threads' on-CPU time from \`/proc/<pid>/task/<tid>/schedstat\` (api, worker, redis-server, and
  every client backend of the database: not autovacuum, which comes when it will, nor the WAL
  writer or checkpointer). Redis commands are \`INFO commandstats\` deltas (our own INFO calls left
  out). Postgres transactions are \`xact_commit + xact_rollback\` of the database, read
  ${STATS_SETTLE_MS / 1000} s after the drain (backends publish their counts at most once a second,
  and an idle one only after 10 s).
- From every delta, the idle rate (measured over ${IDLE_MS / 1000} s with the api and the worker
  up and nothing sent) times the delta's duration is subtracted; so the figures are marginal
  costs, and can come out slightly negative where a type costs a part nothing.
- Ceilings: \`redis-benchmark -c 50\` (pinned to core ${LOAD_CPU}; redis-server moved to core
  ${SERVER_CPU}), with the sliding-window script of the build over 1 000 keys of 60 live slots,
  GET and SET of the size of a cached task, PUBLISH with no and 20 subscribers
  (\`redis-cli subscribe\`); \`pgbench -M prepared -c 10 -T 8\` of the POST's two INSERTs in a
  transaction (with a real task.created payload) and of the read by id and owner (the build's
  statement); an amqplib publisher on a confirm channel (persistent, ${m.ceilings.rabbit.event.inFlight} unconfirmed at most)
  and a consumer with acks and prefetch 20 on a queue of our own, for ${m.ceilings.rabbit.event.seconds} s, with messages
  of the size of a task event and of a request-log batch (one of each weighed in this run).
- The model: per request type, the measured costs; per mix, their weighted sum times the rate;
  api and worker cores at ${pct(TARGET_UTILISATION)}; per api instance, its idle Postgres reads and
  Redis commands; per write, one more PUBLISH delivery per api instance beyond the first.
  Postgres's share is the larger of its backends' CPU over the cores they kept busy in the
  pgbench runs and its commits that write over the POST transaction's ceiling; Redis's is its
  CPU over one core; RabbitMQ's is task events over the ceiling for their size plus request-log
  batches (1 per ${m.logBatchSize} requests) over the ceiling for theirs.
`;
  const prettier = require('prettier');
  const options = (await prettier.resolveConfig(OUTPUT)) ?? {};
  fs.writeFileSync(OUTPUT, await prettier.format(text, { ...options, filepath: OUTPUT }));
}

/** The model from the measurements, into bench/CAPACITY.md; `report` mode: from the last run's. */
async function report(m) {
  m.models = MIXES.map((mix) => ({ mix, rows: SCALES.map((rate) => fleet(mix, rate, m)) }));
  await writeReport(m);
  for (const { mix, rows } of m.models) {
    for (const r of rows) {
      log(
        `${mix.label} at ${n0(r.rate)} req/s: ${r.apis} api cores, Redis ${pct(r.load.Redis)}, ` +
          `Postgres primary ${pct(r.primary)}, RabbitMQ ${pct(r.load.RabbitMQ)}: ${r.first} first`,
      );
    }
  }
}

module.exports = { report };
