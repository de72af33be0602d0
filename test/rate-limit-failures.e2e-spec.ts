import { loadConfig } from '@app/config';
import { RateLimitOverrides, SLIDING_WINDOW_LUA } from '@app/rate-limit';
import { type Reply, type TestUser, call, expectProblem, registerUser } from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import Redis from 'ioredis';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { printFigures } from './figures';
import { startApi } from './app';
import { freePort } from './processes';
import { type RedisServer, startRedis as startServer } from './redis-servers';

/**
 * Rate limiting when Redis fails (CONTRACT §6), against real redis-server processes this spec
 * starts, stops (SIGSTOP), kills and restarts: no request fails or waits on Redis for more than
 * the decision timeout, the fallback still limits, counting in Redis resumes within a second, and
 * what the fallback decided never reaches Redis's count.
 */
describe('rate limiting when Redis fails', () => {
  const { keyPrefix } = loadConfig().redis;
  const servers: RedisServer[] = [];
  const apps: NestFastifyApplication[] = [];
  const probes: Redis[] = [];

  afterAll(async () => {
    for (const server of servers) server.kill();
    await Promise.all(servers.map((server) => server.exited));
    for (const probe of probes) probe.disconnect();
    await Promise.all(apps.map((app) => app.close().catch(() => undefined)));
  });

  /** A redis-server of our own on `port`, stopped when the spec ends. */
  async function startRedis(port: number): Promise<RedisServer> {
    const server = await startServer(port);
    servers.push(server);
    return server;
  }

  /** A client of our own, to read what the limiter wrote. */
  function probe(port: number): Redis {
    const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);
    probes.push(client);
    return client;
  }

  async function limitedApp(port: number): Promise<NestFastifyApplication> {
    const app = await startApi({
      RATE_LIMIT_ENABLED: 'true',
      REDIS_URL: `redis://127.0.0.1:${port}`,
    });
    apps.push(app);
    return app;
  }

  /** rate_limit_decisions_total by `tier/decision` (prom-client's registry is process-wide). */
  async function decisions(app: NestFastifyApplication): Promise<Record<string, number>> {
    const text = (await call<string>(app, { method: 'GET', url: '/metrics' })).body;
    const counts: Record<string, number> = {};
    for (const line of text.split('\n')) {
      const sample = /^rate_limit_decisions_total\{([^}]*)\} (\S+)$/.exec(line);
      if (!sample) continue;
      const labels = Object.fromEntries(
        [...sample[1].matchAll(/(\w+)="([^"]*)"/g)].map(([, name, value]) => [name, value]),
      );
      counts[`${labels.tier}/${labels.decision}`] = Number(sample[2]);
    }
    return counts;
  }

  /** How the free tier's decisions moved between two readings. */
  function freeDelta(before: Record<string, number>, after: Record<string, number>) {
    const delta = (decision: string) =>
      (after[`free/${decision}`] ?? 0) - (before[`free/${decision}`] ?? 0);
    return { allowed: delta('allowed'), limited: delta('limited'), fallback: delta('fallback') };
  }

  interface Timed {
    status: number;
    ms: number;
    reply: Reply;
  }

  /** One authenticated request (a route with no I/O of its own), timed. */
  async function whoami(app: NestFastifyApplication, user: TestUser): Promise<Timed> {
    const started = performance.now();
    const reply = await call(app, {
      method: 'GET',
      url: '/v1/auth/whoami',
      token: user.accessToken,
    });
    return { status: reply.status, ms: performance.now() - started, reply };
  }

  /** `count` requests one after another. */
  async function sequential(app: NestFastifyApplication, user: TestUser, count: number) {
    const results: Timed[] = [];
    for (let i = 0; i < count; i += 1) results.push(await whoami(app, user));
    return results;
  }

  /** `count` requests at once. */
  function concurrent(app: NestFastifyApplication, user: TestUser, count: number) {
    return Promise.all(Array.from({ length: count }, () => whoami(app, user)));
  }

  /** The sum of a client's per-second slots in Redis: what Redis counted for it. */
  async function countedInRedis(client: Redis, user: TestUser): Promise<number> {
    const slots = await client.hgetall(`${keyPrefix}rate-limit:user:${user.id}`);
    return Object.values(slots).reduce((sum, n) => sum + Number(n), 0);
  }

  async function setLimit(app: NestFastifyApplication, user: TestUser, perMinute: number) {
    await app
      .get(DataSource)
      .query(`INSERT INTO rate_limit_configs (identifier, requests_per_minute) VALUES ($1, $2)`, [
        `user:${user.id}`,
        perMinute,
      ]);
    await app.get(RateLimitOverrides).reload();
  }

  const statuses = (results: Timed[]) => results.map((result) => result.status);
  const serverErrors = (results: Timed[]) => results.filter((result) => result.status >= 500);
  const maxMs = (results: Timed[]) => Math.max(...results.map((result) => result.ms));
  const median = (results: Timed[]) =>
    results.map((result) => result.ms).sort((a, b) => a - b)[Math.floor(results.length / 2)];

  it('Redis refusing connections: every decision falls back at once, and the fallback still limits', async () => {
    const port = await freePort(); // nothing listens there
    const app = await limitedApp(port);
    const user = await registerUser(app);
    const before = await decisions(app);

    // The same requests to an api without rate limiting, interleaved, are the baseline.
    const baseline = await startApi();
    apps.push(baseline);
    const alone: Timed[] = [];
    const bursts: Timed[] = [];
    const base = { alone: [] as Timed[], bursts: [] as Timed[] };
    for (let round = 0; round < 10; round += 1) {
      alone.push(...(await sequential(app, user, 10)));
      base.alone.push(...(await sequential(baseline, user, 10)));
      bursts.push(...(await concurrent(app, user, 10)));
      base.bursts.push(...(await concurrent(baseline, user, 10)));
    }
    // After a failure Redis is left alone for 250 ms; past that, each of these tries it again.
    const tries: Timed[] = [];
    for (let i = 0; i < 5; i += 1) {
      await sleep(300);
      tries.push(await whoami(app, user));
    }
    const results = [...alone, ...bursts, ...tries];
    expect(statuses([...base.alone, ...base.bursts])).toEqual(Array(200).fill(200));

    expect(results).toHaveLength(205);
    expect(serverErrors(results)).toEqual([]);
    expect(new Set(statuses(results))).toEqual(new Set([200]));
    for (const { reply } of results) {
      expect(reply.headers['x-ratelimit-limit']).toBe('1000');
      expect(Number(reply.headers['x-ratelimit-remaining'])).toBeLessThan(1000);
      expect(reply.headers['ratelimit-policy']).toBe('"default";q=1000;w=60');
      expect(reply.headers.ratelimit).toMatch(/^"default";r=\d+;t=\d+$/);
    }
    // A refused connection fails at once: a try does not wait out the 50 ms decision timeout
    // (the median, so that one scheduling hiccup of this shared machine does not count)...
    expect(median(tries)).toBeLessThan(25);
    // ...and no request came near a hang, one at a time or ten at once (those queue behind one
    // another in this process: compared with the same bursts without a limiter).
    expect(maxMs(alone)).toBeLessThan(100);
    expect(maxMs(bursts) - maxMs(base.bursts)).toBeLessThan(50);
    expect(freeDelta(before, await decisions(app))).toEqual({
      allowed: 0,
      limited: 0,
      fallback: 205,
    });

    // The fallback limits: 5 a minute for this client.
    const capped = await registerUser(app);
    await setLimit(app, capped, 5);
    const beforeCapped = await decisions(app);
    const cappedResults = await sequential(app, capped, 10);
    const admitted = cappedResults.filter((result) => result.status === 200).length;
    // Exactly 5, or 6 if the fallback's fixed minute turned over during these ~10 ms.
    expect(statuses(cappedResults).slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(admitted).toBeGreaterThanOrEqual(5);
    expect(admitted).toBeLessThanOrEqual(6);
    expect(statuses(cappedResults).slice(admitted)).toEqual(Array(10 - admitted).fill(429));
    const refused = cappedResults[cappedResults.length - 1].reply;
    expectProblem(refused, 429, 'RATE_LIMITED');
    expect(refused.headers['x-ratelimit-limit']).toBe('5');
    expect(refused.headers['x-ratelimit-remaining']).toBe('0');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(freeDelta(beforeCapped, await decisions(app))).toEqual({
      allowed: 0,
      limited: 0,
      fallback: 10,
    });
    printFigures(
      `refused: one at a time max ${maxMs(alone).toFixed(1)} ms, median ${median(alone).toFixed(2)} ms ` +
        `(no limiter: ${maxMs(base.alone).toFixed(1)}, ${median(base.alone).toFixed(2)}); ` +
        `10 at once max ${maxMs(bursts).toFixed(1)} ms, median ${median(bursts).toFixed(2)} ms ` +
        `(no limiter: ${maxMs(base.bursts).toFixed(1)}, ${median(base.bursts).toFixed(2)}); ` +
        `tries of Redis: ${tries.map((t) => t.ms.toFixed(1)).join(', ')} ms`,
    );
  });

  it('Redis hung (SIGSTOP): bounded waits, the fallback decides; resumed (SIGCONT): counting resumes, nothing counted twice', async () => {
    const server = await startRedis(await freePort());
    const app = await limitedApp(server.port);
    const redis = probe(server.port);
    const user = await registerUser(app);
    const start = await decisions(app);

    const healthy = await sequential(app, user, 30);
    expect(statuses(healthy)).toEqual(Array(30).fill(200));
    expect(freeDelta(start, await decisions(app))).toEqual({
      allowed: 30,
      limited: 0,
      fallback: 0,
    });
    expect(await countedInRedis(redis, user)).toBe(30);

    // Hung: the server accepts bytes but runs nothing.
    await server.pause();
    const beforeStop = await decisions(app);
    // A burst first: each of these sends a command before the first one times out, so up to 20
    // calls sit in the hung server's socket, to run when it resumes.
    const stopped = await concurrent(app, user, 20);
    const stoppedSince = performance.now();
    // Then a second of requests one after another (paced: the client's limit is 1000 a minute).
    while (performance.now() - stoppedSince < 1000) {
      stopped.push(await whoami(app, user));
      await sleep(2);
    }
    expect(serverErrors(stopped)).toEqual([]);
    expect(new Set(statuses(stopped))).toEqual(new Set([200]));
    const hungMax = maxMs(stopped);
    // Some requests did wait for Redis (the test really hung it)...
    expect(hungMax).toBeGreaterThanOrEqual(45);
    // ...for the decision timeout only,
    expect(hungMax).toBeLessThan(200);
    // ...and after a timeout Redis is left alone for 250 ms: over the second of sequential
    // requests, at most one in 250 ms waited.
    const waitedSequential = stopped.slice(20).filter((result) => result.ms >= 40).length;
    expect(waitedSequential).toBeLessThanOrEqual(5);
    expect(freeDelta(beforeStop, await decisions(app))).toEqual({
      allowed: 0,
      limited: 0,
      fallback: stopped.length,
    });

    // Resumed: the next try after the pause is decided by Redis again.
    server.resume();
    const resumedAt = performance.now();
    const afterStop = await decisions(app);
    let resumeMs = Infinity;
    const resuming: Timed[] = [];
    while (performance.now() - resumedAt < 2000) {
      resuming.push(await whoami(app, user));
      if (freeDelta(afterStop, await decisions(app)).allowed > 0) {
        resumeMs = performance.now() - resumedAt;
        break;
      }
      await sleep(5);
    }
    expect(resumeMs).toBeLessThan(1000);
    expect(serverErrors(resuming)).toEqual([]);

    const recovered = await sequential(app, user, 30);
    expect(statuses(recovered)).toEqual(Array(30).fill(200));
    const total = freeDelta(start, await decisions(app));
    const sent = healthy.length + stopped.length + resuming.length + recovered.length;
    expect(total.allowed + total.fallback).toBe(sent);
    expect(total.limited).toBe(0);
    // The 30 healthy requests, the one that saw Redis back, and the 30 after it.
    expect(total.allowed).toBe(61);
    // Redis holds exactly what Redis decided: none of the calls that timed out while it was
    // stopped (and ran when it resumed) counted.
    expect(await countedInRedis(redis, user)).toBe(total.allowed);
    printFigures(
      `hung: max ${hungMax.toFixed(1)} ms (healthy median ${median(healthy).toFixed(2)} ms); ` +
        `${stopped.length} fallback decisions; counting resumed ${resumeMs.toFixed(0)} ms after SIGCONT`,
    );
  });

  it('Redis restarted (SIGKILL, a new server on the same port): no failure, counting resumes within 1 s', async () => {
    const port = await freePort();
    const first = await startRedis(port);
    const app = await limitedApp(port);
    const user = await registerUser(app);
    const start = await decisions(app);
    expect(statuses(await sequential(app, user, 20))).toEqual(Array(20).fill(200));
    expect(await countedInRedis(probe(port), user)).toBe(20);

    // Requests keep coming, one after another, through the whole restart.
    const results: Timed[] = [];
    let running = true;
    const load = (async () => {
      while (running) {
        results.push(await whoami(app, user));
        await sleep(2);
      }
    })();
    try {
      await sleep(50);
      first.kill();
      await first.exited;
      await sleep(20);
      const atKill = await decisions(app);
      expect(freeDelta(start, atKill).allowed).toBeGreaterThan(20);
      await sleep(300);
      // No server: the fallback decides everything.
      const down = await decisions(app);
      expect(freeDelta(atKill, down)).toEqual({
        allowed: 0,
        limited: 0,
        fallback: expect.any(Number),
      });
      expect(freeDelta(atKill, down).fallback).toBeGreaterThan(0);
      const second = await startRedis(port);
      const answeringAt = performance.now();
      let resumeMs = Infinity;
      while (performance.now() - answeringAt < 2000) {
        if (freeDelta(down, await decisions(app)).allowed > 0) {
          resumeMs = performance.now() - answeringAt;
          break;
        }
        await sleep(2);
      }
      expect(resumeMs).toBeLessThan(1000);
      await sleep(100);
      running = false;
      await load;

      expect(results.length).toBeGreaterThan(50);
      expect(serverErrors(results)).toEqual([]);
      expect(new Set(statuses(results))).toEqual(new Set([200]));
      const restartMax = maxMs(results);
      expect(restartMax).toBeLessThan(200);
      // The new server started with no scripts: the limiter loaded its own (EVAL), and what the
      // new server counted is exactly what it decided.
      const redis = probe(second.port);
      const sha = createHash('sha1').update(SLIDING_WINDOW_LUA).digest('hex');
      expect(await redis.script('EXISTS', sha)).toEqual([1]);
      const sinceRestart = freeDelta(down, await decisions(app));
      expect(sinceRestart.allowed).toBeGreaterThan(0);
      expect(await countedInRedis(redis, user)).toBe(sinceRestart.allowed);
      printFigures(
        `restarted: max ${restartMax.toFixed(1)} ms over ${results.length} requests; ` +
          `counting resumed ${resumeMs.toFixed(0)} ms after the new server answered`,
      );
    } finally {
      running = false;
      await load;
    }
  });

  it('a clock step (this host now 100 ms behind Redis) does not shut Redis out', async () => {
    const server = await startRedis(await freePort());
    const app = await limitedApp(server.port);
    const redis = probe(server.port);
    const user = await registerUser(app);
    const start = await decisions(app);
    expect(statuses(await sequential(app, user, 10))).toEqual(Array(10).fill(200));
    expect(freeDelta(start, await decisions(app)).allowed).toBe(10);

    // An NTP step: from now on this process's wall clock reads 100 ms less than Redis's (the same
    // as Redis's host clock stepping 100 ms ahead). The deadline of the next call is then in
    // Redis's past; the limiter must measure the offset again rather than fall back for good.
    const realNow = Date.now.bind(Date);
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => realNow() - 100);
    try {
      const steppedAt = performance.now();
      const atStep = await decisions(app);
      const stepped: Timed[] = [];
      let resumeMs = Infinity;
      while (performance.now() - steppedAt < 2000) {
        stepped.push(await whoami(app, user));
        if (freeDelta(atStep, await decisions(app)).allowed > 0) {
          resumeMs = performance.now() - steppedAt;
          break;
        }
        await sleep(5);
      }
      expect(serverErrors(stepped)).toEqual([]);
      expect(resumeMs).toBeLessThan(1000);
      const after = await decisions(app);
      expect(statuses(await sequential(app, user, 20))).toEqual(Array(20).fill(200));
      expect(freeDelta(after, await decisions(app))).toEqual({
        allowed: 20,
        limited: 0,
        fallback: 0,
      });
      const total = freeDelta(start, await decisions(app));
      expect(await countedInRedis(redis, user)).toBe(total.allowed);
      printFigures(`clock step: counting in Redis resumed after ${resumeMs.toFixed(0)} ms`);
    } finally {
      clock.mockRestore();
    }
  });

  it('healthy Redis: a limit of 20 and 100 concurrent requests admit exactly 20', async () => {
    const server = await startRedis(await freePort());
    const app = await limitedApp(server.port);
    const user = await registerUser(app);
    await setLimit(app, user, 20);
    const before = await decisions(app);

    const results = await concurrent(app, user, 100);

    expect(statuses(results).filter((status) => status === 200)).toHaveLength(20);
    expect(statuses(results).filter((status) => status === 429)).toHaveLength(80);
    expectProblem(results.find((result) => result.status === 429)!.reply, 429, 'RATE_LIMITED');
    expect(freeDelta(before, await decisions(app))).toEqual({
      allowed: 20,
      limited: 80,
      fallback: 0,
    });
    expect(await countedInRedis(probe(server.port), user)).toBe(20);
  });
});
