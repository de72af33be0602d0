// @ts-check
'use strict';

/** The report: medians over the rounds, the budgets' verdicts, the tables printed and
 * bench/RESULTS.md. */
const fs = require('node:fs');
const os = require('node:os');
const { SCENARIOS } = require('./scenarios');
const {
  BASELINE_MAX_SPREAD,
  DATABASE,
  DEFAULT_ROUNDS,
  LATER_WARMUP_SECONDS,
  LOAD_CPU,
  MAX_API_RSS_MIB,
  MEASURE_SECONDS,
  RATIO_BASE,
  RESULTS_FILE,
  SEED_TASKS,
  SERVER_CPU,
  WARMUP_SECONDS,
  WRK_CONNECTIONS,
  WRK_THREADS,
} = require('./settings');

// ---------------------------------------------------------------------------------------------
// Report
const fmt = (value, digits) => (value === undefined ? '-' : value.toFixed(digits));

/** The median (the mean of the middle two for an even count); undefined when there is none. */
function median(values) {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The rounds of RATIO_BASE that went cleanly. */
const baselineRuns = (results) =>
  results.filter((r) => r.scenario.name === RATIO_BASE && r.ok && r.rps !== undefined);

/** The ratios' denominator: the baseline's median req/s over its clean rounds. */
const baselineRps = (results) => median(baselineRuns(results).map((r) => r.rps));

/** A warning when the baseline moved between its rounds (other work on the machine), else null. */
function baselineSpreadWarning(results) {
  const rps = baselineRuns(results).map((r) => r.rps);
  if (rps.length < 2) return null;
  const spread = 1 - Math.min(...rps) / Math.max(...rps);
  if (spread <= BASELINE_MAX_SPREAD) return null;
  return (
    `the baseline's rounds differ by up to ${(spread * 100).toFixed(0)}% ` +
    `(${rps.map((n) => n.toFixed(0)).join(', ')} req/s): other work on the machine (or its host) ` +
    'disturbed the run; the medians damp this, but check the spreads, or run again when the ' +
    'machine is quiet'
  );
}

/**
 * One summary per scenario over its rounds: the medians of req/s, p50 and p99 (each taken on its
 * own) and the lowest and highest req/s and p99, over the rounds that produced figures. ok only
 * if every round ran cleanly.
 */
function summarize(results) {
  // The scenarios that ran (all of them, unless BENCH_ONLY chose some).
  const ran = SCENARIOS.filter((scenario) => results.some((r) => r.scenario === scenario));
  return ran.map((scenario) => {
    const runs = results.filter((r) => r.scenario === scenario);
    const measured = runs.filter((r) => r.rps !== undefined);
    const values = (key) => measured.map((r) => r[key]);
    const range = (key) => [Math.min(...values(key)), Math.max(...values(key))];
    return {
      scenario,
      rounds: measured.length,
      ok: runs.length > 0 && runs.every((r) => r.ok),
      rps: median(values('rps')),
      p50Ms: median(values('p50Ms')),
      p99Ms: median(values('p99Ms')),
      // Each CPU part's median, for the table; the budgets take the median of a sum of parts.
      cpu: measured.every((r) => r.cpu !== undefined)
        ? Object.fromEntries(
            Object.keys(measured[0]?.cpu ?? {}).map((part) => [
              part,
              median(measured.map((r) => r.cpu[part])),
            ]),
          )
        : undefined,
      cpuRounds: measured.map((r) => r.cpu),
      redisPerRequest: median(values('redisPerRequest')),
      rpsRange: range('rps'),
      p99Range: range('p99Ms'),
    };
  });
}

/** `median (lowest–highest)`, or the value alone when there was a single round. */
function withRange(value, [low, high], rounds, digits) {
  if (value === undefined) return '-';
  if (rounds < 2) return value.toFixed(digits);
  return `${value.toFixed(digits)} (${low.toFixed(digits)}–${high.toFixed(digits)})`;
}

function summaryRows(summaries, base) {
  return summaries.map((s) => ({
    name: s.scenario.name,
    rps: withRange(s.rps, s.rpsRange, s.rounds, 0),
    p50: fmt(s.p50Ms, 2),
    p99: withRange(s.p99Ms, s.p99Range, s.rounds, 2),
    ratio: s.rps !== undefined && base ? (s.rps / base).toFixed(3) : '-',
    cpu: cpuText(s),
    redis: fmt(s.redisPerRequest, 3),
    note: s.ok ? '' : 'FAILED',
  }));
}

/**
 * The api's CPU per request, then each other part's after a `+`: its worker's for a target with
 * one, nginx's for a fleet ("120 + 30 nginx").
 * @param {{ cpu?: Record<string, number> }} measured
 */
function cpuText({ cpu }) {
  if (cpu === undefined) return '-';
  const { api, ...others } = cpu;
  const rest = Object.entries(others);
  if (rest.length === 0) return fmt(api, 1);
  return [fmt(api, 0), ...rest.map(([part, us]) => `${fmt(us, 0)} ${part}`)].join(' + ');
}

/**
 * The median over a summary's rounds of the CPU per request of `parts` together; undefined
 * without a CPU figure in every round, or, if `all`, when a round lacks one of the parts.
 */
function cpuOf(summary, parts, all) {
  const rounds = summary.cpuRounds;
  if (rounds.length === 0 || rounds.some((cpu) => cpu === undefined)) return undefined;
  if (all && rounds.some((cpu) => parts.some((part) => cpu[part] === undefined))) return undefined;
  return median(rounds.map((cpu) => parts.reduce((sum, part) => sum + (cpu[part] ?? 0), 0)));
}

/** Every measurement, in the order taken. */
const roundRows = (results) =>
  results.map((r) => ({
    round: String(r.round),
    name: r.scenario.name,
    rps: fmt(r.rps, 0),
    p50: fmt(r.p50Ms, 2),
    p99: fmt(r.p99Ms, 2),
    cpu: cpuText(r),
    redis: fmt(r.redisPerRequest, 3),
    note: r.ok ? '' : 'FAILED',
  }));

/** The last column of each, `note`, is a suffix of the scenario's name in Markdown. */
const SUMMARY_COLUMNS = [
  ['name', 'scenario'],
  ['rps', 'median req/s (min–max)'],
  ['p50', 'median p50 ms'],
  ['p99', 'median p99 ms (min–max)'],
  ['ratio', 'ratio to baseline'],
  ['cpu', 'server CPU µs/req'],
  ['redis', 'Redis cmds/req'],
  ['note', ''],
];

const ROUND_COLUMNS = [
  ['round', 'round'],
  ['name', 'scenario'],
  ['rps', 'req/s'],
  ['p50', 'p50 ms'],
  ['p99', 'p99 ms'],
  ['cpu', 'CPU µs/req'],
  ['redis', 'Redis cmds/req'],
  ['note', ''],
];

function textTable(columns, tableRows) {
  const widths = columns.map(([key, title]) =>
    Math.max(title.length, ...tableRows.map((row) => row[key].length)),
  );
  const line = (cells) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])));
  return [
    line(columns.map(([, title]) => title)).join('  '),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...tableRows.map((row) => line(columns.map(([key]) => row[key])).join('  ')),
  ].join('\n');
}

function markdownTable(columns, tableRows) {
  const shown = columns.slice(0, -1);
  return [
    `| ${shown.map(([, title]) => title).join(' | ')} |`,
    `|${shown.map(([key]) => (key === 'name' ? '---' : '---:')).join('|')}|`,
    ...tableRows.map(
      (row) =>
        `| ${shown.map(([key]) => (key === 'name' && row.note ? `${row.name} (**${row.note}**)` : row[key])).join(' | ')} |`,
    ),
  ].join('\n');
}

/** One verdict per budget, on the medians: PASS only if every round ran and every limit holds. */
function verdicts(summaries, base, verification, apiPeakRss) {
  const memory =
    apiPeakRss === undefined
      ? []
      : [
          {
            label: "steady memory: the api's peak RSS through the bench",
            pass: apiPeakRss <= MAX_API_RSS_MIB,
            detail: `${apiPeakRss.toFixed(0)} MiB ${apiPeakRss <= MAX_API_RSS_MIB ? '<=' : '>'} ${MAX_API_RSS_MIB} MiB`,
          },
        ];
  return summaries
    .flatMap((s) => [s.scenario.budget ?? []].flat().map((budget) => ({ s, budget })))
    .map(({ s, budget }) => {
      const {
        label,
        minRatio,
        maxP99Ms,
        relativeTo,
        maxVerificationP99DeltaMs,
        maxCpuRatio,
        cpuParts,
        maxRedisPerRequest,
      } = budget;
      const reference = relativeTo && summaries.find((other) => other.scenario.name === relativeTo);
      const against = relativeTo ? reference?.rps : base;
      const checks = [];
      let pass = s.ok && s.rps !== undefined && against !== undefined;
      if (!s.ok) checks.push('scenario failed');
      if (against === undefined) checks.push(`no ${relativeTo ?? 'baseline'} figure`);
      const of = relativeTo ? ` to ${relativeTo}` : '';
      if (minRatio !== undefined && s.rps !== undefined && against !== undefined) {
        const ratio = s.rps / against;
        const ok = ratio >= minRatio;
        pass &&= ok;
        checks.push(`ratio of medians${of} ${ratio.toFixed(3)} ${ok ? '>=' : '<'} ${minRatio}`);
      }
      if (maxCpuRatio !== undefined) {
        const parts = cpuParts ?? ['api'];
        const mine = cpuOf(s, parts, true);
        const theirs = reference ? cpuOf(reference, parts, false) : undefined;
        if (mine === undefined || theirs === undefined) {
          pass = false;
          checks.push('no CPU figure');
        } else {
          const ratio = mine / theirs;
          const ok = ratio <= maxCpuRatio;
          const which = cpuParts ? ` (${parts.join(' + ')})` : '';
          pass &&= ok;
          const rpsRatio =
            minRatio === undefined && s.rps !== undefined && against !== undefined
              ? ` (req/s ${(s.rps / against).toFixed(3)}x)`
              : '';
          checks.push(
            `server CPU per request${which} ${mine.toFixed(1)} µs vs ${theirs.toFixed(1)} µs${of}: ` +
              `${ratio.toFixed(3)} ${ok ? '<=' : '>'} ${maxCpuRatio}${rpsRatio}`,
          );
        }
      }
      if (maxRedisPerRequest !== undefined) {
        const ok = s.redisPerRequest !== undefined && s.redisPerRequest <= maxRedisPerRequest;
        pass &&= ok;
        checks.push(
          `Redis commands per request ${fmt(s.redisPerRequest, 4)} ${ok ? '<=' : '>'} ${maxRedisPerRequest}`,
        );
      }
      if (maxP99Ms !== undefined && s.p99Ms !== undefined) {
        const ok = s.p99Ms <= maxP99Ms;
        pass &&= ok;
        checks.push(`median p99 ${s.p99Ms.toFixed(2)} ms ${ok ? '<=' : '>'} ${maxP99Ms} ms`);
      }
      if (reference?.p99Ms !== undefined && s.p99Ms !== undefined) {
        // Shown, not judged: under wrk, p99s differ by more than a millisecond run to run.
        const delta = s.p99Ms - reference.p99Ms;
        checks.push(`(end-to-end median p99 ${delta >= 0 ? '+' : ''}${delta.toFixed(2)} ms)`);
      }
      if (maxVerificationP99DeltaMs !== undefined) {
        if (verification === undefined) {
          pass = false;
          checks.push('no verification-cost measurement');
        } else {
          const deltaMs = (verification.apiKey.p99Us - verification.jwt.p99Us) / 1000;
          const ok = deltaMs <= maxVerificationP99DeltaMs;
          pass &&= ok;
          checks.push(
            `verification p99 ${verification.apiKey.p99Us.toFixed(1)} µs vs ` +
              `${verification.jwt.p99Us.toFixed(1)} µs for the JWT: adds ${(deltaMs * 1000).toFixed(1)} µs ` +
              `${ok ? '<=' : '>'} ${maxVerificationP99DeltaMs} ms`,
          );
        }
      }
      return { label: label ?? s.scenario.name, pass, detail: checks.join(', ') };
    })
    .concat(memory);
}

const loadAverage = () =>
  os
    .loadavg()
    .map((n) => n.toFixed(2))
    .join(', ');

function duration(ms) {
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s`;
}

function verificationText(v) {
  if (v === undefined) return "Not measured: see the run's output.";
  const row = (name, m) =>
    `| ${name} | ${m.p50Us.toFixed(1)} | ${m.p99Us.toFixed(1)} | ${m.maxUs.toFixed(1)} |`;
  return [
    `One verification of the seeded credentials, timed call by call (${v.calls} of each, warm,`,
    'interleaved in batches; `bench/verification-cost.js`, pinned to the server core):',
    '',
    '| credential | p50 µs | p99 µs | max µs |',
    '| --- | ---: | ---: | ---: |',
    row('access token (`AccessTokenService.verify`)', v.jwt),
    row('API key (`ApiKeyVerifier.verify`)', v.apiKey),
  ].join('\n');
}

async function writeResults(results, meta, verification, apiPeakRss) {
  const base = baselineRps(results);
  const summaries = summarize(results);
  const budgetLines = verdicts(summaries, base, verification, apiPeakRss).map(
    (v) => `- **${v.pass ? 'PASS' : 'FAIL'}** ${v.label}: ${v.detail}`,
  );
  const spread = baselineSpreadWarning(results);
  const problemLines = [
    ...(spread ? [`- **Noisy run**: ${spread}.`] : []),
    ...results.flatMap((r) => r.problems.map((p) => `- ${r.label}: ${p}`)),
  ];
  const scenarioLines = SCENARIOS.map((s) => `- \`${s.name}\`: ${s.about ?? ''}`);
  const text = `# Benchmark results

> Absolute figures drift between runs on shared machines (other tenants, CPU frequency, noisy
> neighbours). Compare **ratios to the baseline measured in the same run**, not req/s across runs.
> Regenerate with \`npm run bench\` (this file is overwritten).

- Date: ${meta.date}
- Node ${process.version}, \`nproc\` = ${meta.nproc}, ${meta.cpu}
- Load average (1, 5, 15 min) before the run: ${meta.load}; after: ${loadAverage()}. Other work
  on the machine during the run skews the figures.
- ${meta.wrk}
- Commit: ${meta.commit}${meta.buildNote ? `\n- Build warning: ${meta.buildNote}` : ''}
- Rounds: ${meta.rounds}; the whole run took ${duration(Date.now() - meta.startedAt)} (build included).

## Table

Medians over the ${meta.rounds} rounds; in parentheses, the lowest and highest of the rounds.

${markdownTable(SUMMARY_COLUMNS, summaryRows(summaries, base))}

## Budgets

${budgetLines.join('\n')}

## Credential verification

${verificationText(verification)}
${problemLines.length ? `\n## Problems\n\n${problemLines.join('\n')}\n` : ''}
## Rounds

Every measurement, in the order taken:

${markdownTable(ROUND_COLUMNS, roundRows(results))}

## Method

- Server pinned to core ${SERVER_CPU} (\`taskset -c ${SERVER_CPU}\`), load generator on core ${LOAD_CPU}:
  \`taskset -c ${LOAD_CPU} wrk -t${WRK_THREADS} -c${WRK_CONNECTIONS} -d${MEASURE_SECONDS}s --latency\`, after a warm-up
  run of the same command (${WARMUP_SECONDS} s in round 1, ${LATER_WARMUP_SECONDS} s from round 2 on; its figures are discarded).
- The api and the baseline are each started once. The measurements run in ${meta.rounds} rounds
  (\`BENCH_ROUNDS\`, default ${DEFAULT_ROUNDS}); each round loads the baseline (the api idle), then each of
  the api's scenarios in the order listed below (the baseline idle): one server is loaded at a
  time, and other work on the machine hits every scenario alike. Between rounds, the tasks created
  during the round are deleted and the table vacuumed, so every round reads and writes the seeded
  data.
- The api is the production build (\`npm run build\`, \`node dist/apps/api/apps/api/src/main.js\`)
  with \`NODE_ENV=production\`, \`LOG_LEVEL=info\` (one access-log line per request, written to a
  file), a random 48-character \`JWT_SECRET\`, on a fresh database \`${DATABASE}\` (dropped after
  the run), with Redis and RabbitMQ running locally.
- Two more apis from the same build, on the same core (idle while the others are loaded): one
  with \`RATE_LIMIT_ENABLED=false\` serves the "(limiter off)" scenarios, one with
  \`CACHE_ENABLED=false\` the "(cache off)" ones: what the limiter costs, and what the cache
  saves, are the ratios of the same scenario on two of them. The seeded user and key have an override of 10⁹ requests a minute, so every request takes
  its rate-limit decision in Redis and is admitted.
- The fleets \`fleet-1\`, \`fleet-2\`, \`fleet-3\`: \`taskset -c ${SERVER_CPU} node scripts/fleet.js\` with
  1, 2 or 3 apis and no worker (nginx, its worker and the apis inherit the core), with the api's
  environment, database, Redis prefix and queues; the load goes to nginx. Their CPU per request
  is the apis' together, then nginx's (its master and worker: the fleet process's descendants
  that are not apis); the fleet process, idle once ready, is not counted. After the warm-up,
  each api is asked directly for its X-Cache.
- Postgres, Redis and RabbitMQ are not pinned: they share the two cores with the server and wrk.
- Data: one user registered through \`POST /v1/auth/register\`, with one API key made through
  \`POST /v1/api-keys\`, and ${SEED_TASKS} tasks inserted by SQL (varied status, priority, due date,
  tags, description); \`GET /v1/tasks/:id\` reads a task from the middle of them. Every request
  carries the user's access token, except the API-key scenario's, which carry the key instead.
- Before each measurement, one request checks the scenario answers 2xx; a scenario with any
  non-2xx response under load, in any round, counts as failed.
- The table shows, per scenario, the medians over the rounds of req/s, p50 and p99 (each taken on
  its own), and the lowest and highest req/s and p99 of the rounds. Ratios are the median req/s
  over the baseline's median req/s, and the budgets are judged on the medians (ratio and p99); a
  budget relative to another scenario (the API-key read) compares the two scenarios' medians.
  When the baseline's rounds differ by more than ${BASELINE_MAX_SPREAD * 100}% (lowest to highest), the run is
  flagged as noisy.

Scenarios:

${scenarioLines.join('\n')}
`;
  // Formatted like the rest of the repository, so `npm run format:check` stays green.
  const prettier = require('prettier');
  const options = (await prettier.resolveConfig(RESULTS_FILE)) ?? {};
  fs.writeFileSync(
    RESULTS_FILE,
    await prettier.format(text, { ...options, filepath: RESULTS_FILE }),
  );
}

// ---------------------------------------------------------------------------------------------
// Main

module.exports = {
  SUMMARY_COLUMNS,
  baselineRps,
  baselineSpreadWarning,
  cpuText,
  duration,
  fmt,
  loadAverage,
  summarize,
  summaryRows,
  textTable,
  verdicts,
  writeResults,
};
