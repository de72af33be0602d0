import { parseConfig } from '@app/config';
import type { ApiException } from '@app/http';
import { BadRequestException } from '@nestjs/common';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import { Breakers, MAX_WEBHOOK_BREAKERS, isCallersFault } from './breakers';

/** The breaker state machine through our registry, on Jest's fake clock. */
describe('Breakers', () => {
  let breakers: Breakers;
  let registry: Registry;
  let openWebhooks: Gauge;

  beforeEach(() => {
    jest.useFakeTimers();
    registry = new Registry();
    const state = new Gauge({
      name: 'circuit_breaker_state',
      help: 'spec',
      labelNames: ['breaker'],
      registers: [registry],
    });
    const events = new Counter({
      name: 'circuit_breaker_events_total',
      help: 'spec',
      labelNames: ['breaker', 'event'],
      registers: [registry],
    });
    const config = parseConfig({
      BREAKER_VOLUME_THRESHOLD: '10',
      BREAKER_ERROR_THRESHOLD_PERCENT: '50',
      BREAKER_RESET_TIMEOUT_MS: '1000',
      BREAKER_POSTGRES_TIMEOUT_MS: '200',
    });
    openWebhooks = new Gauge({
      name: 'webhook_circuit_breakers_open',
      help: 'spec',
      registers: [registry],
    });
    breakers = new Breakers(config, state, events, openWebhooks);
  });

  afterEach(() => {
    breakers.onApplicationShutdown();
    jest.useRealTimers();
  });

  const fail = () => Promise.reject(new Error('connection refused'));
  const metric = async (name: string, labels: Record<string, string>) => {
    const values = (await registry.getSingleMetric(name)!.get()).values;
    return values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
  };

  /** Opens the postgres breaker: ten failures in the window, past the 50% threshold. */
  async function open(): Promise<void> {
    for (let i = 0; i < 10; i += 1) {
      await expect(breakers.run('postgres', fail)).rejects.toThrow('connection refused');
    }
    expect(breakers.stateOf('postgres')).toBe('open');
  }

  it('stays closed under the volume threshold, opens past the error threshold', async () => {
    for (let i = 0; i < 9; i += 1) await breakers.run('postgres', fail).catch(() => undefined);
    expect(breakers.stateOf('postgres')).toBe('closed');
    await breakers.run('postgres', fail).catch(() => undefined);
    expect(breakers.stateOf('postgres')).toBe('open');
    expect(await metric('circuit_breaker_state', { breaker: 'postgres' })).toBe(2);
  });

  it('keeps counts, not latencies: no sort of the window on a failure or as time passes', async () => {
    // opossum's defaults sort every latency of the rolling window on each failure (to decide
    // whether to open) and every bucket interval (a snapshot no one reads): at 2 000 queries a
    // second, a sort of 20 000 numbers each time, and the most of them while a dependency fails.
    const sort = jest.spyOn(Array.prototype, 'sort');
    try {
      for (let i = 0; i < 200; i += 1) await breakers.run('postgres', () => Promise.resolve(i));
      await expect(breakers.run('postgres', fail)).rejects.toThrow('connection refused');
      await jest.advanceTimersByTimeAsync(5_000);
      expect(sort).not.toHaveBeenCalled();
    } finally {
      sort.mockRestore();
    }
    const [postgres] = breakers.list();
    expect(postgres.window).toMatchObject({ calls: 201, successes: 200, failures: 1 });
  });

  it('while open, refuses at once without running the work', async () => {
    await open();
    const work = jest.fn(() => Promise.resolve('ran'));
    jest.advanceTimersByTime(400);
    const refused = await breakers.run('postgres', work).catch((error: unknown) => error);
    // A 503 problem, with Retry-After counting down to the half-open probe (1 s after opening).
    expect(refused).toMatchObject({
      code: 'DEPENDENCY_UNAVAILABLE',
      headers: { 'retry-after': '1' },
    });
    expect((refused as ApiException).getStatus()).toBe(503);
    expect(work).not.toHaveBeenCalled();
    expect(
      await metric('circuit_breaker_events_total', { breaker: 'postgres', event: 'reject' }),
    ).toBe(1);
  });

  it('half-open: of 200 concurrent callers exactly one probe runs; a good probe closes it', async () => {
    await open();
    jest.advanceTimersByTime(1000);
    expect(breakers.stateOf('postgres')).toBe('half-open');
    let release!: () => void;
    const probe = jest.fn(() => new Promise<string>((resolve) => (release = () => resolve('ok'))));
    const calls = Array.from({ length: 200 }, () => breakers.run('postgres', probe));
    const settled = Promise.allSettled(calls);
    release();
    const results = await settled;
    expect(probe).toHaveBeenCalledTimes(1);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(
      results.filter((r) => r.status === 'rejected' && r.reason.code === 'DEPENDENCY_UNAVAILABLE'),
    ).toHaveLength(199);
    expect(breakers.stateOf('postgres')).toBe('closed');
    expect(await metric('circuit_breaker_state', { breaker: 'postgres' })).toBe(0);
  });

  it('a failed probe opens it again, for another reset timeout', async () => {
    await open();
    jest.advanceTimersByTime(1000);
    await expect(breakers.run('postgres', fail)).rejects.toThrow('connection refused');
    expect(breakers.stateOf('postgres')).toBe('open');
    jest.advanceTimersByTime(999);
    expect(breakers.stateOf('postgres')).toBe('open');
    jest.advanceTimersByTime(1);
    expect(breakers.stateOf('postgres')).toBe('half-open');
  });

  it('a call slower than the timeout fails with 503, and counts as a timeout', async () => {
    const hung = breakers.run('postgres', () => new Promise(() => undefined));
    jest.advanceTimersByTime(200);
    await expect(hung).rejects.toMatchObject({
      code: 'DEPENDENCY_TIMEOUT',
      detail: 'postgres did not answer within 200 ms.',
    });
    expect(breakers.list().find((b) => b.name === 'postgres')?.window).toMatchObject({
      calls: 1,
      timeouts: 1,
    });
  });

  it("the caller's faults never open it: 4xx, integrity and data errors", async () => {
    const duplicate = Object.assign(new Error('duplicate key'), { code: '23505' });
    for (let i = 0; i < 20; i += 1) {
      await breakers.run('postgres', () => Promise.reject(duplicate)).catch(() => undefined);
      await breakers
        .run('postgres', () => Promise.reject(new BadRequestException()))
        .catch(() => undefined);
    }
    expect(breakers.stateOf('postgres')).toBe('closed');
    expect(isCallersFault(Object.assign(new Error('syntax'), { code: '42601' }))).toBe(false);
    expect(isCallersFault(Object.assign(new Error('bad number'), { code: '22P02' }))).toBe(true);
  });

  it('one breaker per webhook subscription, created on first use; each trips alone', async () => {
    for (let i = 0; i < 10; i += 1) {
      await breakers.runWebhook('failing-subscription', fail).catch(() => undefined);
    }
    // Another subscription, to the same host or URL or not: its own breaker, untouched.
    expect(await breakers.runWebhook('healthy-subscription', () => Promise.resolve('sent'))).toBe(
      'sent',
    );
    expect(breakers.stateOf('webhook:failing-subscription')).toBe('open');
    expect(breakers.stateOf('webhook:healthy-subscription')).toBe('closed');
    expect(breakers.stateOf('postgres')).toBe('closed');
    // Bounded metrics: one count of open ones, events under one label; not a series each.
    expect((await openWebhooks.get()).values[0].value).toBe(1);
    const text = await registry.metrics();
    expect(text).toContain('circuit_breaker_events_total{breaker="webhook",event="open"} 1');
    expect(text).not.toContain('subscription');
    expect(breakers.list().map((b) => b.name)).toEqual(['postgres', 'redis', 'rabbitmq']);
  });

  it(`keeps at most ${MAX_WEBHOOK_BREAKERS} webhook breakers: the least recently used is let go`, async () => {
    for (let i = 0; i < 10; i += 1) {
      await breakers.runWebhook('first', fail).catch(() => undefined);
    }
    expect(breakers.stateOf('webhook:first')).toBe('open');
    expect((await openWebhooks.get()).values[0].value).toBe(1);
    for (let n = 0; n < MAX_WEBHOOK_BREAKERS; n += 1) {
      await breakers.runWebhook(`other-${n}`, () => Promise.resolve());
    }
    // Shut down and forgotten, and no longer counted as open.
    expect(breakers.stateOf('webhook:first')).toBeUndefined();
    expect(breakers.stateOf(`webhook:other-${MAX_WEBHOOK_BREAKERS - 1}`)).toBe('closed');
    expect((await openWebhooks.get()).values[0].value).toBe(0);
    // Its subscription delivering again starts with a closed breaker.
    expect(await breakers.runWebhook('first', () => Promise.resolve('sent'))).toBe('sent');
  });
});

/** A timeout that really stops the work: a webhook receiver that never answers, on real timers. */
describe('Breakers: timeouts abort the work', () => {
  let receiver: http.Server;
  let breakers: Breakers;
  /** Resolves when the receiver's side of the request's connection closes. */
  let closed: Promise<number>;

  beforeAll(async () => {
    let markClosed: (at: number) => void = () => undefined;
    closed = new Promise((resolve) => (markClosed = resolve));
    // Reads the request, then never answers.
    receiver = http.createServer((request) => {
      request.socket.once('close', () => markClosed(performance.now()));
    });
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    const registry = new Registry();
    breakers = new Breakers(
      parseConfig({ BREAKER_WEBHOOK_TIMEOUT_MS: '200' }),
      new Gauge({ name: 'state', help: 'spec', labelNames: ['breaker'], registers: [registry] }),
      new Counter({
        name: 'events',
        help: 'spec',
        labelNames: ['breaker', 'event'],
        registers: [registry],
      }),
      new Gauge({ name: 'open', help: 'spec', registers: [registry] }),
    );
  });

  afterAll(async () => {
    breakers.onApplicationShutdown();
    receiver.closeAllConnections();
    receiver.close();
    await once(receiver, 'close');
  });

  it('a delivery past its timeout fails with 503 and its request is cut, not left running', async () => {
    const { port } = receiver.address() as AddressInfo;
    const started = performance.now();
    const failed = await breakers
      .runWebhook('127.0.0.1', (signal) =>
        fetch(`http://127.0.0.1:${port}/hook`, { method: 'POST', body: '{}', signal }),
      )
      .catch((error: unknown) => error);
    expect(failed).toMatchObject({ code: 'DEPENDENCY_TIMEOUT' });
    // The receiver sees its connection close at the timeout, not whenever it would have answered.
    const closedAt = await Promise.race([closed, sleep(2000).then(() => Infinity)]);
    expect(closedAt - started).toBeGreaterThanOrEqual(190);
    expect(closedAt - started).toBeLessThan(1000);
  });
});
