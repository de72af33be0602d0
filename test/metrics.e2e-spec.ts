import { loadConfig } from '@app/config';
import { call } from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWorkerApp } from '../apps/worker/src/bootstrap';
import { startApi } from './app';
import { deleteJobQueues } from './queues';

const base = loadConfig();
const ENV = {
  RATE_LIMIT_ENABLED: 'true',
  REDIS_KEY_PREFIX: `${base.redis.keyPrefix}metrics-${randomUUID()}:`,
  RABBITMQ_QUEUE_PREFIX: `${base.rabbitmq.queuePrefix}metrics-${randomUUID()}.`,
};

/** `promtool check metrics` on a scrape: its exit status and what it said. */
function promtool(scrape: string): { status: number | null; output: string } {
  const run = spawnSync('promtool', ['check', 'metrics'], { input: scrape, encoding: 'utf8' });
  if (run.error) {
    throw new Error(
      `promtool could not run (${run.error.message}): install Debian's prometheus package ` +
        '(.ci/run does when it is missing)',
    );
  }
  return { status: run.status, output: `${run.stdout}${run.stderr}`.trim() };
}

/** The value of one series (labels as Prometheus writes them), or undefined when absent. */
function valueOf(scrape: string, series: string): number | undefined {
  const line = scrape.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/**
 * /metrics of both apps as Prometheus's own linter and alert rules need them (issue 15, defect
 * 9): `promtool check metrics` finds nothing, and the labelled counters alerts watch exist at 0
 * from start-up, before their first event.
 */
describe('/metrics of the api and the worker', () => {
  let api: NestFastifyApplication;
  let worker: NestFastifyApplication;
  const config = loadConfig(ENV);

  beforeAll(async () => {
    api = await startApi(ENV);
    worker = await createWorkerApp(config);
    await worker.init();
  });
  afterAll(async () => {
    await Promise.all([api.close(), worker.close()]);
    await deleteJobQueues(config);
  });

  const scrape = async (app: NestFastifyApplication) =>
    (await call(app, { method: 'GET', url: '/metrics' })).raw;

  it.each([
    ['api', () => api],
    ['worker', () => worker],
  ])('the %s passes promtool check metrics', async (_, app) => {
    // After some traffic too, so that request series are in it.
    await call(app(), { method: 'GET', url: '/health/live' });
    expect(promtool(await scrape(app()))).toEqual({ status: 0, output: '' });
  });

  it('the api has every rate-limit decision and cache result at 0 before the first', async () => {
    const text = await scrape(api);
    for (const tier of ['anonymous', 'free', 'pro', 'enterprise']) {
      for (const decision of ['allowed', 'limited', 'fallback']) {
        expect(
          valueOf(text, `rate_limit_decisions_total{tier="${tier}",decision="${decision}"}`),
        ).toBe(0);
      }
    }
    for (const level of ['local', 'redis']) {
      for (const result of ['hit', 'miss', 'stale', 'bypass']) {
        expect(valueOf(text, `cache_requests_total{level="${level}",result="${result}"}`)).toBe(0);
      }
    }
  });

  it.each([
    ['api', () => api],
    ['worker', () => worker],
  ])('the %s has every breaker event at 0 for each kind of breaker', async (_, app) => {
    const text = await scrape(app());
    for (const breaker of ['postgres', 'redis', 'rabbitmq', 'webhook']) {
      for (const event of ['failure', 'timeout', 'reject', 'open', 'halfOpen', 'close']) {
        expect(
          valueOf(text, `circuit_breaker_events_total{breaker="${breaker}",event="${event}"}`),
        ).toBe(0);
      }
    }
  });

  it('the worker has every job outcome of every queue at 0 before the first', async () => {
    const text = await scrape(worker);
    for (const queue of ['task-events', 'webhook-deliveries', 'request-logs', 'exports']) {
      for (const outcome of ['succeeded', 'retried', 'dead_lettered']) {
        expect(valueOf(text, `jobs_processed_total{queue="${queue}",outcome="${outcome}"}`)).toBe(
          0,
        );
      }
    }
  });
});
