import { loadConfig } from '@app/config';
import { RateLimitOverrides, RedisThrottlerStorage, TIER_LIMITS } from '@app/rate-limit';
import { call, expectProblem, registerUser, type Reply } from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseList } from 'structured-headers';
import { DataSource } from 'typeorm';
import { startApi } from './app';
import { freePort, runBuilt, waitFor } from './processes';

/** Rate limits (CONTRACT §6, issue 4): exactness across instances, the window, headers, clients. */
describe('rate limiting', () => {
  const config = loadConfig();
  /** A Redis key prefix of its own, so that a test's clients start from nothing. */
  const freshPrefix = () => `${config.redis.keyPrefix}rl-${randomUUID()}:`;
  const limited = (overrides: Record<string, string> = {}) =>
    startApi({ RATE_LIMIT_ENABLED: 'true', REDIS_KEY_PREFIX: freshPrefix(), ...overrides });

  /** The RateLimit and RateLimit-Policy fields, parsed as HTTP structured fields (RFC 8941). */
  function rateLimitFields(reply: Pick<Reply, 'headers'>) {
    const [[policyName, policy]] = parseList(String(reply.headers['ratelimit-policy'])) as [
      [string, Map<string, number>],
    ];
    const [[name, state]] = parseList(String(reply.headers.ratelimit)) as [
      [string, Map<string, number>],
    ];
    expect(policyName).toBe('default');
    expect(name).toBe('default');
    return { q: policy.get('q'), w: policy.get('w'), r: state.get('r'), t: state.get('t') };
  }

  describe('through one instance', () => {
    let app: NestFastifyApplication;
    beforeAll(async () => {
      app = await limited();
    });
    afterAll(() => app.close());

    it('every limited response carries the headers, as structured fields; 429 carries Retry-After >= t', async () => {
      const user = await registerUser(app);
      const db = app.get(DataSource);
      await db.query(
        `INSERT INTO rate_limit_configs (identifier, requests_per_minute) VALUES ($1, 3)`,
        [`user:${user.id}`],
      );
      await app.get(RateLimitOverrides).reload();
      const replies: Reply[] = [];
      for (let i = 0; i < 5; i += 1) {
        replies.push(
          await call(app, { method: 'GET', url: '/v1/users/me', token: user.accessToken }),
        );
      }
      expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 429, 429]);
      replies.forEach((reply, i) => {
        const fields = rateLimitFields(reply);
        expect(fields).toEqual({
          q: 3,
          w: 60,
          r: Math.max(0, 2 - i),
          t: expect.any(Number),
        });
        expect(reply.headers['x-ratelimit-limit']).toBe('3');
        expect(reply.headers['x-ratelimit-remaining']).toBe(String(fields.r));
        const reset = Number(reply.headers['x-ratelimit-reset']);
        expect(reset - Date.now() / 1000).toBeGreaterThan(0);
        expect(reset - Date.now() / 1000).toBeLessThanOrEqual(62);
        if (reply.status === 429) {
          expectProblem(reply, 429, 'RATE_LIMITED');
          expect(Number(reply.headers['retry-after'])).toBeGreaterThanOrEqual(fields.t!);
          expect(fields.t).toBeGreaterThan(0);
        }
      });
    });

    it('probes and metrics are never limited, and carry no rate-limit headers', async () => {
      for (const url of ['/health/live', '/health/ready', '/metrics']) {
        const reply = await call(app, { method: 'GET', url });
        expect(reply.status).toBe(200);
        expect(reply.headers.ratelimit).toBeUndefined();
      }
    });

    it('counts decisions by tier in rate_limit_decisions_total', async () => {
      const metrics = (await call(app, { method: 'GET', url: '/metrics' })).raw;
      expect(metrics).toMatch(
        /^rate_limit_decisions_total\{tier="free",decision="allowed"\} \d+$/m,
      );
      expect(metrics).toMatch(
        /^rate_limit_decisions_total\{tier="free",decision="limited"\} \d+$/m,
      );
    });
  });

  describe('who a client is', () => {
    it('with TRUST_PROXY unset, 1 000 requests with random X-Forwarded-For count as one client', async () => {
      const app = await limited();
      try {
        // The auth guard runs first: anonymous traffic is counted on a public route.
        const replies = await Promise.all(
          Array.from({ length: 1000 }, (_, i) =>
            call(app, {
              method: 'POST',
              url: '/v1/auth/login',
              headers: { 'x-forwarded-for': `203.0.113.${i % 250}` },
              body: { email: `nobody-${i}@example.test`, password: 'wrong password' },
            }),
          ),
        );
        const admitted = replies.filter((r) => r.status !== 429).length;
        expect(admitted).toBe(TIER_LIMITS.anonymous);
      } finally {
        await app.close();
      }
    });

    it('with TRUST_PROXY set, each forwarded address is its own client', async () => {
      const app = await limited({ TRUST_PROXY: '1' });
      try {
        // Three requests for each of 100 addresses: all admitted (each address has 100).
        const logins = await Promise.all(
          Array.from({ length: 300 }, (_, i) =>
            call(app, {
              method: 'POST',
              url: '/v1/auth/login',
              headers: { 'x-forwarded-for': `198.51.100.${i % 100}` },
              body: { email: `nobody-${i}@example.test`, password: 'wrong password' },
            }),
          ),
        );
        expect(logins.filter((r) => r.status === 429)).toHaveLength(0);
      } finally {
        await app.close();
      }
    });

    it('a request refused for its credentials counts against its address: guessing tokens is limited', async () => {
      const app = await limited();
      try {
        const guesses = await Promise.all(
          Array.from({ length: 150 }, (_, i) =>
            call(app, {
              method: 'GET',
              url: '/v1/tasks',
              headers:
                i % 2 ? { 'x-api-key': `thk_guess${i}` } : { authorization: `Bearer x.${i}.y` },
            }),
          ),
        );
        expect(guesses.filter((r) => r.status === 401)).toHaveLength(TIER_LIMITS.anonymous);
        expect(guesses.filter((r) => r.status === 429)).toHaveLength(50);
        const refused = guesses.find((r) => r.status === 401)!;
        expect(rateLimitFields(refused)).toMatchObject({ q: TIER_LIMITS.anonymous });
        expectProblem(
          guesses.find((r) => r.status === 429)!,
          429,
          'RATE_LIMITED',
        );
      } finally {
        await app.close();
      }
    });

    it('an authenticated caller counts as its user, by its tier', async () => {
      const app = await limited();
      try {
        const user = await registerUser(app);
        const reply = await call(app, {
          method: 'GET',
          url: '/v1/auth/whoami',
          token: user.accessToken,
        });
        expect(rateLimitFields(reply)).toMatchObject({
          q: TIER_LIMITS.free,
          r: TIER_LIMITS.free - 1,
        });
      } finally {
        await app.close();
      }
    });
  });
  it('is exact across instances: 1 000 concurrent requests over three instances, limit 100, 100 admitted', async () => {
    const prefix = freshPrefix();
    const env = { RATE_LIMIT_ENABLED: 'true', REDIS_KEY_PREFIX: prefix };
    // Three api processes; the in-process app only registers the user (the test process is busy
    // being the load generator, it would be a poor instance).
    const ports = await Promise.all([freePort(), freePort(), freePort()]);
    // Before the in-process app: without a build this throws with nothing left open.
    const instances = ports.map((port) => runBuilt('api', { ...env, PORT: String(port) }));
    let app: NestFastifyApplication | undefined;
    try {
      app = await startApi(env);
      await Promise.all(ports.map((port) => waitFor(`http://127.0.0.1:${port}/health/ready`)));
      const user = await registerUser(app);
      await app
        .get(DataSource)
        .query(
          `INSERT INTO rate_limit_configs (identifier, requests_per_minute) VALUES ($1, 100)`,
          [`user:${user.id}`],
        );
      await sleep(1000); // every instance re-reads the overrides within 1 s
      const statuses = await Promise.all(
        Array.from({ length: 1000 }, (_, i) =>
          fetch(`http://127.0.0.1:${ports[i % 3]}/v1/users/me`, {
            headers: { authorization: `Bearer ${user.accessToken}` },
          }).then((r) => r.status),
        ),
      );
      const decisions = await Promise.all(
        ports.map(async (port) => {
          const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          const count = (decision: string) =>
            Number(
              new RegExp(
                `^rate_limit_decisions_total\\{tier="free",decision="${decision}"\\} (\\d+)$`,
                'm',
              ).exec(text)?.[1] ?? 0,
            );
          return {
            allowed: count('allowed'),
            limited: count('limited'),
            fallback: count('fallback'),
          };
        }),
      );
      // Redis's decisions, spread over the three instances, admitted exactly the limit. A decision
      // that waited past its 50 ms bound fell back to the instance's own count (CONTRACT §6): on
      // two cores running three apis and this load, a handful may (2 of 1 000, in one CI run),
      // and each can add one admission at most; Redis never counts them.
      const fallbacks = decisions.reduce((sum, d) => sum + d.fallback, 0);
      expect(fallbacks).toBeLessThanOrEqual(10);
      expect(decisions.reduce((sum, d) => sum + d.allowed, 0)).toBe(100);
      expect(decisions.every((d) => d.allowed + d.limited > 0)).toBe(true);
      const admitted = statuses.filter((s) => s === 200).length;
      expect(admitted).toBeGreaterThanOrEqual(100);
      expect(admitted).toBeLessThanOrEqual(100 + fallbacks);
      expect(statuses.filter((s) => s === 429)).toHaveLength(1000 - admitted);
      // Redis holds exactly the admitted requests for this client.
      const redis = new Redis(config.redis.url, { keyPrefix: prefix });
      try {
        const slots = await redis.hvals(`rate-limit:user:${user.id}`);
        expect(slots.reduce((sum, n) => sum + Number(n), 0)).toBe(100);
      } finally {
        redis.disconnect();
      }
    } finally {
      for (const instance of instances) instance.child.kill('SIGTERM');
      await Promise.all(instances.map((instance) => instance.exited));
      await app?.close();
    }
  });

  describe('the sliding window (the storage against Redis, with a 2 s window)', () => {
    const WINDOW = 2000;
    const LIMIT = 10;
    let redis: Redis;
    let storage: RedisThrottlerStorage;
    beforeAll(() => {
      redis = new Redis(config.redis.url, { keyPrefix: freshPrefix() });
      storage = new RedisThrottlerStorage(redis);
    });
    afterAll(() => redis.disconnect());

    it('a burst at the end of one window and another at the start of the next admit the limit once', async () => {
      const key = `edge-${randomUUID()}`;
      const burst = () =>
        Promise.all(Array.from({ length: LIMIT }, () => storage.increment(key, WINDOW, LIMIT)));
      // Align to just before a fixed 2 s boundary of the wall clock: where fixed windows reset.
      await sleep(WINDOW - (Date.now() % WINDOW) - 100);
      const first = await burst();
      await sleep(200); // now just after the boundary
      const second = await burst();
      expect(first.filter((r) => !r.isBlocked)).toHaveLength(LIMIT);
      expect(second.filter((r) => !r.isBlocked)).toHaveLength(0);
      expect(second.every((r) => r.decidedBy === 'redis')).toBe(true);
      // A refusal says when to come back: about when the first burst leaves the window.
      const retry = Math.max(...second.map((r) => r.timeToBlockExpire));
      expect(retry).toBeGreaterThanOrEqual(1);
      expect(retry).toBeLessThanOrEqual(Math.ceil(WINDOW / 1000) + 1);
      // Once the first burst is older than the window, the client is admitted again.
      await sleep(WINDOW);
      expect((await storage.increment(key, WINDOW, LIMIT)).isBlocked).toBe(false);
    });

    // Also a window whose slots do not divide it evenly (150 ms / 60 slots = 2.5 ms): rounded
    // down, 60 slots of 2 ms covered only 120 ms of it.
    it.each([
      { window: WINDOW, limit: LIMIT },
      { window: 150, limit: 3 },
    ])(
      'steady traffic never gets more than the limit into any rolling window ($window ms)',
      async ({ window, limit }) => {
        const key = `steady-${randomUUID()}`;
        // Redis decided each admission between when we sent it and when its answer came.
        const admitted: Array<{ sentAt: number; receivedAt: number }> = [];
        const until = Date.now() + 2.5 * window;
        while (Date.now() < until) {
          const sentAt = Date.now();
          const record = await storage.increment(key, window, limit);
          if (!record.isBlocked) admitted.push({ sentAt, receivedAt: Date.now() });
          await sleep(window / 150);
        }
        // Admitted again after the first window: the window slides, it does not lock out.
        expect(admitted.length).toBeGreaterThan(limit);
        // The admission `limit` places later than any other was decided a whole window after it,
        // or the window held limit + 1. Bounded by what we saw (the later one's answer, the
        // earlier one's sending), so a slow answer cannot fail it, while a window that admits one
        // too many puts two admissions a few ms apart, far under.
        for (let i = limit; i < admitted.length; i += 1) {
          expect(admitted[i].receivedAt - admitted[i - limit].sentAt).toBeGreaterThanOrEqual(
            window,
          );
        }
      },
    );

    it('keeps a bounded hash per client, whatever its traffic', async () => {
      const key = `memory-${randomUUID()}`;
      await Promise.all(
        Array.from({ length: 2000 }, () => storage.increment(key, WINDOW, 100_000)),
      );
      // 61 slots, and the marker of the one instance taking leases (worth 0: see sliding-window).
      expect(await redis.hlen(`${key}`)).toBeLessThanOrEqual(62);
      expect(await redis.pttl(key)).toBeLessThanOrEqual(WINDOW + Math.ceil(WINDOW / 60));
    });
  });
  describe('leases (three instances on one Redis, each its own storage and connection)', () => {
    type Instance = { storage: RedisThrottlerStorage; redis: Redis; calls: () => number };
    let prefix: string;
    let instances: Instance[];
    let probe: Redis;

    /**
     * A storage with its own connection, counting its script calls: its trips to Redis (EVALSHA;
     * an EVAL after it only loads the script).
     */
    function instance(): Instance {
      const redis = new Redis(config.redis.url, { keyPrefix: prefix });
      let calls = 0;
      const send = redis.sendCommand.bind(redis);
      redis.sendCommand = (command: Parameters<Redis['sendCommand']>[0], ...rest: []) => {
        if (command.name === 'evalsha') calls += 1;
        return send(command, ...rest);
      };
      return { storage: new RedisThrottlerStorage(redis), redis, calls: () => calls };
    }
    const totalCalls = () => instances.reduce((sum, i) => sum + i.calls(), 0);
    /** What Redis counts for the client: the sum of its fields (the markers are worth 0). */
    const counted = async (key: string) =>
      Object.values(await probe.hgetall(key)).reduce((sum, n) => sum + Number(n), 0);

    beforeEach(async () => {
      prefix = freshPrefix();
      instances = [instance(), instance(), instance()];
      probe = new Redis(config.redis.url, { keyPrefix: prefix });
      // Connected first: a command sent before is queued, and passes sendCommand twice.
      await Promise.all(instances.map((i) => i.redis.ping()));
    });
    afterEach(() => {
      for (const i of instances) i.redis.disconnect();
      probe.disconnect();
    });

    it('1 000 concurrent requests over three instances admit exactly the limit, in far fewer calls than requests', async () => {
      const key = `burst-${randomUUID()}`;
      const LIMIT = 300;
      const records = await Promise.all(
        Array.from({ length: 1000 }, (_, i) =>
          instances[i % 3].storage.increment(key, 60_000, LIMIT),
        ),
      );
      expect(records.every((r) => r.decidedBy === 'redis')).toBe(true);
      expect(records.filter((r) => !r.isBlocked)).toHaveLength(LIMIT);
      // Every instance had demand beyond what it was granted: no permit was left unspent.
      expect(await counted(key)).toBe(LIMIT);
      expect(totalCalls()).toBeLessThan(200);
    });

    it('Remaining is never above what is left: no more are admitted after a reply than it said', async () => {
      const key = `remaining-${randomUUID()}`;
      const LIMIT = 100;
      const rounds: { admitted: number; remaining: number[] }[] = [];
      for (let round = 0; round < 6; round += 1) {
        const records = await Promise.all(
          Array.from({ length: 30 }, (_, i) =>
            instances[(i + round) % 3].storage.increment(key, 60_000, LIMIT),
          ),
        );
        const admitted = records.filter((r) => !r.isBlocked);
        rounds.push({
          admitted: admitted.length,
          remaining: admitted.map((r) => LIMIT - r.totalHits),
        });
      }
      expect(rounds.reduce((sum, r) => sum + r.admitted, 0)).toBe(LIMIT);
      rounds.forEach((round, k) => {
        const later = rounds.slice(k + 1).reduce((sum, r) => sum + r.admitted, 0);
        for (const remaining of round.remaining) expect(later).toBeLessThanOrEqual(remaining);
      });
    });

    it('a hot client costs under 0.05 calls per request, and what it did not spend is given back', async () => {
      const key = `hot-${randomUUID()}`;
      const LIMIT = 10_000_000;
      const [{ storage, calls }] = instances;
      let admitted = 0;
      const run = async (ms: number) => {
        const until = performance.now() + ms;
        while (performance.now() < until) {
          // Ten at a time, as from ten connections.
          const records = await Promise.all(
            Array.from({ length: 10 }, () => storage.increment(key, 60_000, LIMIT)),
          );
          admitted += records.filter((r) => !r.isBlocked).length;
        }
      };
      await run(1500); // a second at least, so its rate is known
      const [callsBefore, admittedBefore] = [calls(), admitted];
      await run(1500);
      const perRequest = (calls() - callsBefore) / (admitted - admittedBefore);
      expect(admitted - admittedBefore).toBeGreaterThan(5000);
      expect(perRequest).toBeLessThan(0.05);
      // Leased ahead of its requests: Redis counts more than were admitted, until the lease's
      // slot is over and the next call gives the rest back (two seconds later the client is no
      // longer hot: that call asks for itself alone).
      expect(await counted(key)).toBeGreaterThan(admitted);
      await sleep(2100);
      await storage.increment(key, 60_000, LIMIT);
      expect(await counted(key)).toBe(admitted + 1);
    });

    it('steady hot traffic through three instances never gets more than the limit into any rolling window', async () => {
      const key = `rolling-${randomUUID()}`;
      const [WINDOW, LIMIT] = [2000, 200];
      const admitted: Array<{ sentAt: number; receivedAt: number }> = [];
      const until = performance.now() + 2.5 * WINDOW;
      await Promise.all(
        instances.flatMap(({ storage }) =>
          Array.from({ length: 10 }, async () => {
            while (performance.now() < until) {
              const sentAt = performance.now();
              const record = await storage.increment(key, WINDOW, LIMIT);
              if (!record.isBlocked) admitted.push({ sentAt, receivedAt: performance.now() });
              await sleep(1);
            }
          }),
        ),
      );
      admitted.sort((a, b) => a.receivedAt - b.receivedAt);
      expect(admitted.length).toBeGreaterThan(2 * LIMIT);
      // Each admission was decided between its sending and its answer. LIMIT + 1 of them all
      // decided within less than a window would be a window over the limit.
      for (let i = 0; i + LIMIT < admitted.length; i += 1) {
        const group = admitted.slice(i, i + LIMIT + 1);
        const earliest = Math.min(...group.map((a) => a.sentAt));
        expect(group[LIMIT].receivedAt - earliest).toBeGreaterThanOrEqual(WINDOW);
      }
      expect(totalCalls()).toBeLessThan(admitted.length);
    });

    it('a client sending one request at a time costs one call per request, as without leases', async () => {
      const key = `cold-${randomUUID()}`;
      for (let i = 0; i < 20; i += 1) {
        await instances[i % 3].storage.increment(key, 60_000, 1000);
        await sleep(20);
      }
      expect(totalCalls()).toBe(20);
      expect(await counted(key)).toBe(20);
    });
  });
});
