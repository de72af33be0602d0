// @ts-check
'use strict';

/**
 * `npm run bench`: builds the apps, starts the api in production mode on a fresh database, seeds
 * it, and loads each scenario with wrk, server pinned to core 0 and wrk to core 1 (as the project's
 * first measurements were made). Prints a table and the budget verdicts and writes bench/RESULTS.md.
 *
 * The measurements run in rounds (BENCH_ROUNDS, default 3): each round loads the baseline, then
 * each of the api's scenarios, so that other work on this shared machine hits all scenarios alike.
 * The table shows each scenario's median over the rounds, with the spread; ratios and budgets use
 * the medians.
 *
 * Exit status: 0 when the benchmark ran, even if a budget or a scenario failed (they are printed
 * loudly); 1 when it could not run (build, wrk, database, start-up...); 130 when interrupted.
 *
 * To add a scenario, add an object to SCENARIOS in bench/scenarios.js. The parts, one role each:
 * settings.js, scenarios.js, processes.js, servers.js, data.js, load.js, measure.js, report.js.
 */

const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const { NODE_RUNTIME_FLAGS } = require('../scripts/runtime');
const {
  createDatabase,
  deleteWebhooksQueues,
  dropDatabase,
  dropRequestLog,
  restoreSeed,
  seed,
  seedMark,
  seedWebhooks,
  settleWorker,
} = require('./data');
const { closeRedis, peakRssMiB, runScenarios } = require('./measure');
const {
  BenchError,
  children,
  freePort,
  log,
  loud,
  request,
  run,
  runMain,
  startPinned,
  state,
  stop,
  waitFor200,
} = require('./processes');
const {
  SUMMARY_COLUMNS,
  baselineRps,
  baselineSpreadWarning,
  duration,
  loadAverage,
  summarize,
  summaryRows,
  textTable,
  verdicts,
  writeResults,
} = require('./report');
const { SCENARIOS } = require('./scenarios');
const {
  build,
  ensureWrk,
  fleetPids,
  measureVerification,
  openPostgresBreaker,
  proxyToPostgres,
  startApi,
  startFleet,
  startReceiver,
  startWorker,
} = require('./servers');
const {
  API_ENV,
  BASELINE_PORT,
  CPU_PARTS,
  DATABASE,
  DATABASE_URL,
  DEFAULT_ROUNDS,
  LATER_WARMUP_SECONDS,
  RECEIVER_PORT,
  RESULTS_FILE,
  ROOT,
  RUN_DIR,
  SEED_PORT,
  SERVER_CPU,
  TARGETS,
  WARMUP_SECONDS,
  WEBHOOKS_DATABASE,
  WORKER_PORT,
} = require('./settings');

let cleaning = null;

function cleanup() {
  cleaning ??= (async () => {
    await Promise.all([
      stop(state.baseline),
      stop(state.seed),
      ...state.apis.map((api) => stop(api)),
    ]);
    await Promise.all(state.proxies.map((proxy) => proxy.close()));
    closeRedis();
    await Promise.all([...children].map((child) => stop(child, 3000)));
    await dropRequestLog('delete');
    if (state.webhooksUsed) {
      await deleteWebhooksQueues().catch((error) =>
        log(`could not delete the webhooks target's queues: ${error.message}`),
      );
      await dropDatabase(WEBHOOKS_DATABASE).catch((error) =>
        log(`could not drop ${WEBHOOKS_DATABASE}: ${error.message}`),
      );
    }
    if (state.databaseCreated) {
      try {
        await dropDatabase();
        log(`dropped the database ${DATABASE}`);
      } catch (error) {
        log(`could not drop the database ${DATABASE}: ${error.message}`);
      }
    }
  })();
  return cleaning;
}

async function metadata() {
  const wrk = await run('wrk', ['-v']);
  const commit = await run('git', ['rev-parse', '--short', 'HEAD']);
  const dirty = await run('git', ['status', '--porcelain', '--untracked-files=no']);
  return {
    date: new Date().toISOString(),
    load: loadAverage(),
    nproc: (await run('nproc', [])).stdout.trim(),
    cpu: os.cpus()[0]?.model ?? 'unknown CPU',
    wrk: (wrk.stdout + wrk.stderr).split('\n')[0].replace(/\s*Copyright.*$/, ''),
    commit:
      commit.code === 0
        ? `${commit.stdout.trim()}${dirty.stdout.trim() ? ' (with uncommitted changes)' : ''}`
        : 'unknown',
  };
}

/**
 * BENCH_ONLY: a regular expression; only the scenarios whose name matches it run (the baseline
 * always does), and bench/RESULTS.md is left as it is. For quick comparisons while profiling.
 */
function onlyScenarios() {
  for (const scenario of SCENARIOS) {
    if (scenario.status && !scenario.rate) {
      throw new BenchError(`${scenario.name}: \`status\` needs \`rate\` (wrk cannot check it)`);
    }
    for (const { cpuParts = [] } of [scenario.budget ?? []].flat()) {
      const unknown = cpuParts.filter((part) => !CPU_PARTS.includes(part));
      if (unknown.length > 0) {
        throw new BenchError(`${scenario.name}: no CPU part ${unknown.join(', ')} (${CPU_PARTS})`);
      }
    }
  }
  const text = (process.env.BENCH_ONLY ?? '').trim();
  if (text === '') return SCENARIOS;
  let pattern;
  try {
    pattern = new RegExp(text);
  } catch (error) {
    throw new BenchError(`BENCH_ONLY is not a regular expression: ${error.message}`);
  }
  const chosen = SCENARIOS.filter(
    (s) => s.target === 'baseline' || s.target === 'seed' || pattern.test(s.name),
  );
  if (chosen.every((s) => s.target === 'baseline' || s.target === 'seed')) {
    throw new BenchError(`BENCH_ONLY=${text} matches no scenario`);
  }
  return chosen;
}

/** BENCH_ROUNDS: a whole number >= 1, DEFAULT_ROUNDS when unset or empty. */
function benchRounds() {
  const text = (process.env.BENCH_ROUNDS ?? '').trim();
  if (text === '') return DEFAULT_ROUNDS;
  if (!/^\d+$/.test(text) || Number(text) < 1) {
    throw new BenchError(`BENCH_ROUNDS must be a whole number >= 1, not "${text}"`);
  }
  return Number(text);
}

async function main() {
  const startedAt = Date.now();
  const rounds = benchRounds();
  const scenarios = onlyScenarios();
  fs.mkdirSync(RUN_DIR, { recursive: true });
  const buildNote = await build();
  await ensureWrk();
  const meta = { ...(await metadata()), buildNote, rounds, startedAt };

  state.databaseCreated = true;
  await createDatabase();

  const taken = [];
  const urls = {};
  const pids = {};
  const workerPids = {};
  const fleets = {};
  const cuts = [];
  for (const [name, target] of Object.entries(TARGETS)) {
    // The api serves the seeding; the variants start only when a scenario needs them.
    if (name !== 'api' && !scenarios.some((s) => s.target === name)) continue;
    const port = await freePort(target.port, taken);
    taken.push(port);
    urls[name] = `http://127.0.0.1:${port}`;
    if (target.fleet) {
      fleets[name] = await startFleet(name, target, port);
      urls[name] = fleets[name].entry;
      state.apis.push(fleets[name].child);
      continue;
    }
    /** @type {Record<string, string>} */
    const env = { ...target.env };
    if (target.cutDatabase) {
      const proxy = await proxyToPostgres();
      env.DATABASE_URL = `postgres://postgres@127.0.0.1:${proxy.port}/${DATABASE}`;
      cuts.push({ name, url: urls[name], proxy });
    }
    if (target.worker) {
      // A fresh one, which the api creates and migrates.
      state.webhooksUsed = true;
      await dropDatabase(WEBHOOKS_DATABASE);
    }
    const api = await startApi(port, env, name);
    state.apis.push(api);
    pids[name] = api.pid;
    if (target.worker) {
      const workerPort = await freePort(WORKER_PORT, taken);
      taken.push(workerPort);
      const worker = await startWorker(name, target, workerPort);
      state.apis.push(worker);
      workerPids[name] = worker.pid;
    }
  }
  const apiUrl = urls.api;
  const baselinePort = await freePort(BASELINE_PORT, taken);
  const baselineUrl = `http://127.0.0.1:${baselinePort}`;
  const ctx = await seed(apiUrl);
  if (urls['api-webhooks']) {
    const receiverPort = await freePort(RECEIVER_PORT, taken);
    taken.push(receiverPort);
    state.apis.push(await startReceiver(receiverPort));
    ctx.webhooks = await seedWebhooks(urls['api-webhooks'], `http://127.0.0.1:${receiverPort}`);
  }
  const mark = await seedMark();
  for (const cut of cuts) await openPostgresBreaker(cut, ctx);

  // The baseline answers exactly what the api answers for the picked task.
  const task = await request(`${apiUrl}/v1/tasks/${ctx.taskId}`, {
    headers: { authorization: `Bearer ${ctx.token}` },
  });
  if (task.status !== 200) {
    throw new BenchError(`GET /v1/tasks/${ctx.taskId} answered ${task.status}: ${task.text}`);
  }
  const bodyFile = path.join(RUN_DIR, 'task.json');
  fs.writeFileSync(bodyFile, task.text);

  // Both servers stay up for the whole run, pinned to the same core: each is idle while the
  // other is loaded.
  log(`starting the bare server on :${baselinePort}, pinned to core ${SERVER_CPU}...`);
  const baselineLog = path.join(RUN_DIR, 'bare-server.log');
  const probePath = `/json/tasks/${ctx.taskId}`;
  state.baseline = startPinned(
    SERVER_CPU,
    // The same runtime flags as the api: the comparison is of the code, not of V8's settings.
    ['node', ...NODE_RUNTIME_FLAGS, path.join(__dirname, 'bare-server.js')],
    {
      ...process.env,
      DATABASE_URL,
      JWT_SECRET: API_ENV.JWT_SECRET,
      BENCH_BARE_PORT: String(baselinePort),
      BENCH_BARE_BODY_FILE: bodyFile,
    },
    baselineLog,
  );
  await waitFor200(baselineUrl + probePath, state.baseline, baselineLog, 'the bare server');
  // The same bodies as the api's: the JSON route, and the task read from Postgres.
  /** @type {Array<[string, Record<string, string>]>} */
  const sameAsApi = [
    [baselineUrl + probePath, {}],
    [`${baselineUrl}/v1/tasks/${ctx.taskId}`, { authorization: `Bearer ${ctx.token}` }],
  ];
  for (const [url, headers] of sameAsApi) {
    const same = await request(url, { headers });
    if (same.text !== task.text) {
      loud([`the bare server's ${url} differs from the api's body:`, same.text, task.text]);
    }
  }

  const seedPort = await freePort(SEED_PORT, [...taken, baselinePort]);
  const seedUrl = `http://127.0.0.1:${seedPort}`;
  log(`starting the seed-style stack on :${seedPort}, pinned to core ${SERVER_CPU}...`);
  const seedLog = path.join(RUN_DIR, 'seed-stack.log');
  state.seed = startPinned(
    SERVER_CPU,
    ['node', ...NODE_RUNTIME_FLAGS, path.join(__dirname, 'seed-stack.js')],
    {
      ...process.env,
      DATABASE_URL,
      JWT_SECRET: API_ENV.JWT_SECRET,
      BENCH_SEED_PORT: String(seedPort),
    },
    seedLog,
  );
  await waitFor200(
    `${seedUrl}/v1/tasks/${ctx.taskId}`,
    state.seed,
    seedLog,
    'the seed-style stack',
    { authorization: `Bearer ${ctx.token}` },
  );

  const results = [];
  const baselineScenarios = scenarios.filter((s) => s.target === 'baseline');
  const seedScenarios = scenarios.filter((s) => s.target === 'seed');
  for (let round = 1; round <= rounds; round += 1) {
    const warmupSeconds = round === 1 ? WARMUP_SECONDS : LATER_WARMUP_SECONDS;
    log(`round ${round} of ${rounds}: the baseline (apis idle), then each api (the others idle)`);
    const baselineServer = { url: baselineUrl, cpuPids: () => ({ api: [state.baseline.pid] }) };
    await runScenarios(baselineScenarios, ctx, baselineServer, results, round, warmupSeconds);
    const seedServer = { url: seedUrl, cpuPids: () => ({ api: [state.seed.pid] }) };
    await runScenarios(seedScenarios, ctx, seedServer, results, round, warmupSeconds);
    for (const [name, url] of Object.entries(urls)) {
      const ofTarget = scenarios.filter((s) => s.target === name);
      const before = TARGETS[name].worker ? () => settleWorker(ctx) : undefined;
      const fleet = fleets[name];
      const server = fleet
        ? { url, instanceUrls: fleet.apis.map((api) => api.url), cpuPids: () => fleetPids(fleet) }
        : {
            url,
            cpuPids: () => ({
              api: [pids[name]],
              ...(workerPids[name] ? { worker: [workerPids[name]] } : {}),
            }),
            before,
          };
      await runScenarios(ofTarget, ctx, server, results, round, warmupSeconds);
    }
    if (round < rounds) await restoreSeed(mark);
  }
  const apiPeakRss = peakRssMiB(pids.api);
  await stop(state.baseline);
  await stop(state.seed);
  await Promise.all(state.apis.map((api) => stop(api)));
  await Promise.all(cuts.map((cut) => cut.proxy.close()));
  const verification = await measureVerification(ctx);

  const base = baselineRps(results);
  const summaries = summarize(results);
  process.stdout.write(
    `\nMedians over ${rounds} round(s); in parentheses, the lowest and highest of the rounds.\n\n` +
      `${textTable(SUMMARY_COLUMNS, summaryRows(summaries, base))}\n\nBudgets:\n`,
  );
  for (const v of verdicts(summaries, base, verification, apiPeakRss)) {
    process.stdout.write(`  ${v.pass ? 'PASS' : 'FAIL'}  ${v.label}: ${v.detail}\n`);
  }
  const failed = results.filter((r) => !r.ok).map((r) => r.label);
  if (failed.length > 0) loud([`FAILED SCENARIOS: ${failed.join(', ')}`, 'see above']);
  const spread = baselineSpreadWarning(results);
  if (spread) loud(['NOISY RUN', spread]);

  if (scenarios !== SCENARIOS) {
    log(`BENCH_ONLY: ${path.relative(ROOT, RESULTS_FILE)} left as it was`);
    return;
  }
  await writeResults(results, meta, verification, apiPeakRss);
  log(
    `wrote ${path.relative(ROOT, RESULTS_FILE)} (the run took ${duration(Date.now() - startedAt)})`,
  );
}

runMain(main, cleanup, { say: log, failure: '[bench] the benchmark could not run' });
