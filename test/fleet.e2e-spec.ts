/**
 * The fleet (issue 14): `npm run fleet` as users run it (nginx in front of three built api
 * processes and a worker), and every request through nginx. What one instance promised must hold
 * for the many: requests spread, nothing lost in a rolling restart or when an instance dies, rate
 * limits exact and per client address, writes and revocations seen by every instance.
 */
import { parseConfig } from '@app/config';
import { BODY_LIMIT_BYTES, KEEP_ALIVE_TIMEOUT_MS } from '@app/http';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { Agent, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { startFleet, type Fleet } from './fleet';
import { printFigures } from './figures';
import { send } from './processes';

jest.setTimeout(300_000);

/** The load's bound on requests outstanding at once. */
const MAX_IN_FLIGHT = 100;
/** The fewest requests a load sends, however slowly the fleet answers. */
const LOAD_REQUESTS = 1000;

const password = 'correct horse battery staple';

/** One request from a given local address (127.0.0.0/8 is all loopback on Linux). */
function fromAddress(
  url: string,
  localAddress: string,
  headers: Record<string, string> = {},
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { localAddress, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Whether something still accepts connections on this port of 127.0.0.1. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The sum of a counter's samples whose labels match, from an instance's /metrics. */
async function counter(base: string, name: string, labels: Record<string, string> = {}) {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return sum;
}

interface Outcome {
  kind: 'read' | 'write';
  started: number;
  ended: number;
  status: number;
  /** Writes: the task's unique title, its Idempotency-Key, and its id once acknowledged. */
  title?: string;
  key?: string;
  id?: string;
  /** A failure's problem code, or the client's error. */
  failure?: string;
  /** Sent again once, on a new connection: see `exchange`. */
  retried?: boolean;
}

/**
 * One request as a careful HTTP client makes it: a connection that fails before any byte of the
 * response arrives is tried once more on a new connection, for a GET (RFC 9110 §9.2.2: safe to
 * repeat) or a request with an Idempotency-Key (applied once however often it is sent), and for
 * nothing else. A server may close an idle keep-alive connection at any moment (RFC 9112 §9.3),
 * and nginx does, to its clients, when it reloads: a request written into such a connection,
 * or into one accepted an instant before, was never read. (Node's docs on
 * `request.reusedSocket`, curl and Go's net/http retry the same way.) Failures that nginx or the
 * api answer, a 503 included, are responses, and are never retried here.
 */
function exchange(
  agent: Agent | false,
  url: string,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  outcome: Outcome,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
      res.on('error', (error: Error & { code?: string }) =>
        reject(Object.assign(error, { code: `${error.code ?? error.message} in the response` })),
      );
    });
    req.on('error', (error: Error & { code?: string }) => {
      const repeatable = method === 'GET' || headers['idempotency-key'] !== undefined;
      if (repeatable && !outcome.retried && error.code === 'ECONNRESET') {
        outcome.retried = true;
        resolve(exchange(false, url, method, headers, body, outcome));
      } else {
        reject(error);
      }
    });
    req.end(body);
  });
}

/**
 * A steady mixed load through nginx: `rate` requests a second on keep-alive connections, 7 in 10
 * reads of the user's tasks (one by id, or the first page), 3 in 10 creations, each with a
 * unique title and an Idempotency-Key, until `during` settles and at least LOAD_REQUESTS have
 * been sent (a count, not a time: a busy machine sends fewer a second); then waits for every
 * request.
 */
async function underLoad(
  entry: string,
  token: string,
  taskIds: string[],
  rate: number,
  during: () => Promise<unknown>,
): Promise<Outcome[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 100 });
  const outcomes: Outcome[] = [];
  const inFlight = new Set<Promise<void>>();
  const fire = (i: number) => {
    const write = i % 10 < 3;
    const outcome: Outcome = {
      kind: write ? 'write' : 'read',
      started: Date.now(),
      ended: 0,
      status: 0,
    };
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    let exchanged: Promise<{ status: number; text: string }>;
    if (write) {
      outcome.title = `load-${randomUUID()}`;
      outcome.key = randomUUID();
      headers['content-type'] = 'application/json';
      headers['idempotency-key'] = outcome.key;
      const body = JSON.stringify({ title: outcome.title });
      exchanged = exchange(agent, `${entry}/v1/tasks`, 'POST', headers, body, outcome);
    } else {
      const path = i % 2 ? `/v1/tasks/${taskIds[i % taskIds.length]}` : '/v1/tasks?limit=10';
      exchanged = exchange(agent, `${entry}${path}`, 'GET', headers, undefined, outcome);
    }
    const done = exchanged
      .then(({ status, text }) => {
        outcome.status = status;
        let body: { id?: string; code?: string } | undefined;
        try {
          body = JSON.parse(text) as { id?: string; code?: string };
        } catch {
          body = undefined;
        }
        if (write && status === 201) outcome.id = body?.id;
        if (status >= 400) outcome.failure = body?.code ?? text.slice(0, 80);
      })
      .catch((error: Error & { code?: string }) => {
        outcome.failure = error.code ?? error.message; // status 0: no response
      })
      .finally(() => {
        outcome.ended = Date.now();
        outcomes.push(outcome);
        inFlight.delete(done);
      });
    inFlight.add(done);
  };
  let stop = false;
  const finished = during().finally(() => (stop = true));
  const started = Date.now();
  let due = 0;
  let fired = 0;
  while (!stop || fired < LOAD_REQUESTS) {
    const now = Math.floor(((Date.now() - started) * rate) / 1000);
    while (due < now) {
      due += 1;
      // At most MAX_IN_FLIGHT outstanding: a fleet slowed by a busy machine is sent less, rather
      // than buried under a queue of the test's making.
      if (inFlight.size < MAX_IN_FLIGHT) fire(fired++);
    }
    await sleep(5);
  }
  await finished;
  await Promise.all(inFlight);
  agent.destroy();
  const retried = outcomes.filter((o) => o.retried).length;
  printFigures(
    `fleet load: ${outcomes.length} requests, ${retried} sent again after a connection closed unanswered`,
  );
  return outcomes;
}

/** Failures by kind, status and problem code (or client error): `{}` when there are none. */
function tally(outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) {
    if (o.status === (o.kind === 'write' ? 201 : 200)) continue;
    const key = `${o.kind} ${o.status} ${o.failure ?? ''}${o.retried ? ' (retried)' : ''}`.trim();
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

describe('nginx/taskhub.conf.template against the api', () => {
  const template = readFileSync(join(__dirname, '../nginx/taskhub.conf.template'), 'utf8');
  const directive = (name: string): string[] =>
    [...template.matchAll(new RegExp(`^\\s*${name}\\s+([^;]+);`, 'gm'))].map((m) => m[1]);
  const seconds = (value: string) => Number(/^(\d+)s$/.exec(value)?.[1]);

  it('closes idle upstream connections before the api would, so it never writes into one closing', () => {
    const [upstreamIdle] = directive('keepalive_timeout');
    expect(seconds(upstreamIdle) * 1000).toBeLessThan(KEEP_ALIVE_TIMEOUT_MS);
  });

  it("takes the api's body limit, and waits longer than the api's own bounds", () => {
    expect(directive('client_max_body_size')).toEqual(['1m']);
    expect(BODY_LIMIT_BYTES).toBe(1024 * 1024);
    const config = parseConfig({});
    const read = seconds(directive('proxy_read_timeout')[0]) * 1000;
    expect(read).toBeGreaterThan(config.http.handlerTimeoutMs);
    expect(read).toBeGreaterThan(config.http.requestTimeoutMs);
  });

  it('never sends a request twice unless it is idempotent or was never sent', () => {
    const [next] = directive('proxy_next_upstream');
    // Not `non_idempotent`, nor a 5xx: nginx then never passes a POST on once sent.
    expect(next.split(/\s+/).sort()).toEqual(['error', 'timeout']);
  });
});

describe('a fleet behind nginx (npm run fleet)', () => {
  let fleet: Fleet;
  let db: Client;
  let token: string;
  let userId: string;
  const taskIds: string[] = [];
  const entry = () => fleet.current.entry;

  beforeAll(async () => {
    fleet = await startFleet({ RATE_LIMIT_ENABLED: 'true' });
    db = new Client({ connectionString: process.env.DATABASE_URL });
    await db.connect();
    const email = `fleet-${randomUUID()}@example.test`;
    const registered = await send(entry(), 'POST', '/v1/auth/register', undefined, {
      email,
      password,
      name: 'Fleet',
    });
    expect(registered.status).toBe(201);
    token = registered.body.accessToken;
    userId = (await send(entry(), 'GET', '/v1/users/me', { token })).body.id;
    // The load below is ~3 000 requests a minute from this user: well past the free tier's 1 000.
    await db.query(
      `INSERT INTO rate_limit_configs (identifier, requests_per_minute) VALUES ($1, 1000000)`,
      [`user:${userId}`],
    );
    for (let i = 0; i < 20; i += 1) {
      const created = await send(entry(), 'POST', '/v1/tasks', { token }, { title: `seed ${i}` });
      expect(created.status).toBe(201);
      taskIds.push(created.body.id);
    }
    await sleep(1200); // every instance re-reads the overrides within 1 s
  });

  afterAll(async () => {
    await db?.end();
    if (fleet) expect((await fleet.stop()).code).toBe(0);
  });

  it('announces itself: nginx, three apis and a worker, each ready', async () => {
    const ready = fleet.current;
    expect(ready.pid).toBe(fleet.child.pid);
    expect(ready.entry).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(ready.apis).toHaveLength(3);
    expect(ready.workers).toHaveLength(1);
    for (const member of [...ready.apis, ...ready.workers]) {
      expect((await fetch(`${member.url}/health/ready`)).status).toBe(200);
    }
  });

  it('spreads requests over every instance', async () => {
    const route = { route: '/v1/tasks/:id', method: 'GET' };
    const before = await Promise.all(
      fleet.current.apis.map((api) => counter(api.url, 'http_requests_total', route)),
    );
    for (let i = 0; i < 90; i += 1) {
      expect((await send(entry(), 'GET', `/v1/tasks/${taskIds[i % 20]}`, { token })).status).toBe(
        200,
      );
    }
    const after = await Promise.all(
      fleet.current.apis.map((api) => counter(api.url, 'http_requests_total', route)),
    );
    const served = after.map((n, i) => n - before[i]);
    expect(served.reduce((a, b) => a + b, 0)).toBe(90);
    for (const n of served) expect(n).toBeGreaterThanOrEqual(15);
  });

  it('passes X-Request-ID through, and gives a request without one an id of its own', async () => {
    const own = await fetch(`${entry()}/health/live`, {
      headers: { 'x-request-id': 'fleet-trace-1' },
    });
    expect(own.headers.get('x-request-id')).toBe('fleet-trace-1');
    const minted = await fetch(`${entry()}/health/live`);
    expect(minted.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/);
  });

  it("refuses a body over 1 MiB at nginx with the api's problem", async () => {
    const response = await fetch(`${entry()}/v1/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'x', description: 'y'.repeat(1024 * 1024) }),
    });
    expect(response.status).toBe(413);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    const problem = (await response.json()) as { code: string; requestId: string };
    expect(problem.code).toBe('PAYLOAD_TOO_LARGE');
    expect(problem.requestId).toBe(response.headers.get('x-request-id'));
  });

  it('a write through one instance is read back fresh through nginx, from every instance', async () => {
    const id = taskIds[0];
    // Every instance has the task cached (90 reads above, and these).
    for (let i = 0; i < 9; i += 1) await send(entry(), 'GET', `/v1/tasks/${id}`, { token });
    const [writer] = fleet.current.apis;
    const title = `renamed ${randomUUID()}`;
    const patched = await send(writer.url, 'PATCH', `/v1/tasks/${id}`, { token }, { title });
    expect(patched.status).toBe(200);
    // Invalidations travel over Redis pub/sub: give them their bound, then every instance agrees.
    await sleep(200);
    for (let i = 0; i < 30; i += 1) {
      const read = await send(entry(), 'GET', `/v1/tasks/${id}`, { token });
      expect(read.body.title).toBe(title);
      expect(read.body.version).toBe(patched.body.version);
    }
  });

  it('an API key revoked through one instance is refused by every instance within 1 s', async () => {
    const created = await send(
      entry(),
      'POST',
      '/v1/api-keys',
      { token },
      {
        name: 'fleet',
        scopes: ['tasks:read'],
      },
    );
    expect(created.status).toBe(201);
    const { id, key } = created.body as { id: string; key: string };
    const apis = fleet.current.apis;
    // Verified, and so cached, on each instance.
    for (const api of apis)
      expect((await send(api.url, 'GET', '/v1/auth/whoami', { key })).status).toBe(200);
    const revokedAt = Date.now();
    expect((await send(apis[0].url, 'DELETE', `/v1/api-keys/${id}`, { token })).status).toBe(204);
    const refusedAfter = await Promise.all(
      apis.map(async (api) => {
        for (;;) {
          const { status } = await send(api.url, 'GET', '/v1/auth/whoami', { key });
          if (status === 401) return Date.now() - revokedAt;
          expect(status).toBe(200);
          if (Date.now() - revokedAt > 2000) return Infinity;
          await sleep(20);
        }
      }),
    );
    for (const ms of refusedAfter) expect(ms).toBeLessThan(1000);
    expect((await send(entry(), 'GET', '/v1/auth/whoami', { key })).status).toBe(401);
  });

  it("holds a client's rate limit exactly through nginx: 400 concurrent, limit 50, 50 admitted", async () => {
    const email = `fleet-limited-${randomUUID()}@example.test`;
    const registered = await send(entry(), 'POST', '/v1/auth/register', undefined, {
      email,
      password,
      name: 'Limited',
    });
    expect(registered.status).toBe(201);
    const limitedToken: string = registered.body.accessToken;
    // The user's id from the token itself: a request would count against the limit.
    const { sub } = JSON.parse(Buffer.from(limitedToken.split('.')[1], 'base64url').toString()) as {
      sub: string;
    };
    await db.query(
      `INSERT INTO rate_limit_configs (identifier, requests_per_minute) VALUES ($1, 50)`,
      [`user:${sub}`],
    );
    await sleep(1200);
    const fallbackBefore = await Promise.all(
      fleet.current.apis.map((api) =>
        counter(api.url, 'rate_limit_decisions_total', { decision: 'fallback' }),
      ),
    );
    const statuses = await Promise.all(
      Array.from({ length: 400 }, () =>
        fetch(`${entry()}/v1/users/me`, {
          headers: { authorization: `Bearer ${limitedToken}` },
        }).then(async (r) => (await r.arrayBuffer(), r.status)),
      ),
    );
    const fallbackAfter = await Promise.all(
      fleet.current.apis.map((api) =>
        counter(api.url, 'rate_limit_decisions_total', { decision: 'fallback' }),
      ),
    );
    // A decision that waited past its 50 ms bound falls back to the instance's own count
    // (CONTRACT §6) and may admit one more: counted, so the rest is exact.
    const fallbacks = fallbackAfter.reduce((sum, n, i) => sum + n - fallbackBefore[i], 0);
    expect(fallbacks).toBeLessThanOrEqual(10);
    const admitted = statuses.filter((s) => s === 200).length;
    expect(admitted).toBeGreaterThanOrEqual(50);
    expect(admitted).toBeLessThanOrEqual(50 + fallbacks);
    expect(statuses.filter((s) => s === 429)).toHaveLength(400 - admitted);
  });

  it("per-address limits see the client's address, not nginx's, and not a forged X-Forwarded-For", async () => {
    // Unauthenticated requests count against their address: 100 a minute (the anonymous tier).
    const url = `${entry()}/v1/tasks`;
    const first: number[] = [];
    for (let i = 0; i < 110; i += 1) first.push(await fromAddress(url, '127.0.0.2'));
    expect(first.filter((s) => s === 401)).toHaveLength(100);
    expect(first.filter((s) => s === 429)).toHaveLength(10);
    // The same address under a forged header is still itself...
    expect(await fromAddress(url, '127.0.0.2', { 'x-forwarded-for': '203.0.113.9' })).toBe(429);
    // ...and another address is another client.
    expect(await fromAddress(url, '127.0.0.3')).toBe(401);
  });

  it('rolls every api instance on SIGHUP under ~200 req/s: no request fails, every acknowledged write is stored', async () => {
    const before = fleet.current.apis.map((api) => api.pid);
    const outcomes = await underLoad(entry(), token, taskIds, 200, async () => {
      await sleep(1000);
      const rolled = fleet.nextReady();
      process.kill(fleet.child.pid!, 'SIGHUP');
      await rolled;
      await sleep(1000);
    });
    const after = fleet.current.apis.map((api) => api.pid);
    expect(after).toHaveLength(3);
    for (const pid of after) expect(before).not.toContain(pid);
    for (const pid of before) expect(() => process.kill(pid, 0)).toThrow();

    expect(outcomes.length).toBeGreaterThanOrEqual(LOAD_REQUESTS);
    expect(tally(outcomes)).toEqual({});
    const ids = outcomes.filter((o) => o.kind === 'write').map((o) => o.id!);
    const { rows } = await db.query<{ n: string }>(
      `SELECT count(*) AS n FROM tasks WHERE id = ANY($1::uuid[])`,
      [ids],
    );
    expect(Number(rows[0].n)).toBe(ids.length);
  });

  it('one api SIGKILLed under load: no read fails, a failed write was in flight on it, none is stored twice', async () => {
    const victim = fleet.current.apis[1];
    // The kill takes from the signal until the process's sockets are closed (its port refuses
    // connections): a request in flight on it at any moment of that is one the kill can fail.
    let killedAt = 0;
    let deadAt = 0;
    const port = Number(new URL(victim.url).port);
    const outcomes = await underLoad(entry(), token, taskIds, 200, async () => {
      await sleep(2000);
      const replaced = fleet.nextReady();
      killedAt = Date.now();
      process.kill(victim.pid, 'SIGKILL');
      while (await accepts(port)) await sleep(1);
      deadAt = Date.now();
      const ready = await replaced;
      expect(ready.apis).toHaveLength(3);
      expect(ready.apis.map((api) => api.pid)).not.toContain(victim.pid);
      await sleep(1000);
    });
    expect(outcomes.length).toBeGreaterThanOrEqual(LOAD_REQUESTS);
    const reads = outcomes.filter((o) => o.kind === 'read');
    expect(tally(reads)).toEqual({});
    const writes = outcomes.filter((o) => o.kind === 'write');
    const failed = writes.filter((o) => o.status !== 201);
    // Only a POST nginx had already sent to the victim can fail (nginx never sends one twice):
    // each was in flight when the kill came, and got nginx's 503 problem.
    const inFlightAtTheKill = (o: Outcome) =>
      o.started <= deadAt && o.ended >= killedAt && o.status === 503;
    expect(failed.filter((o) => !inFlightAtTheKill(o))).toEqual([]);
    printFigures(
      `fleet kill: ${failed.length} of ${writes.length} writes failed, all in flight during the ` +
        `kill (${deadAt - killedAt} ms from SIGKILL to a refused port); ${reads.length} reads, none failed`,
    );
    // Every acknowledged write is stored once; a failed one at most once (it may have committed
    // before its answer was lost)...
    const titles = writes.map((o) => o.title!);
    const { rows } = await db.query<{ title: string; n: string }>(
      `SELECT title, count(*) AS n FROM tasks WHERE title = ANY($1) GROUP BY title`,
      [titles],
    );
    const stored = new Map(rows.map((r) => [r.title, Number(r.n)]));
    for (const o of writes) {
      if (o.status === 201) expect(stored.get(o.title!)).toBe(1);
      else expect(stored.get(o.title!) ?? 0).toBeLessThanOrEqual(1);
    }
    // ...and the client's retry with the same Idempotency-Key leaves exactly one.
    for (const o of failed) {
      const retried = await fetch(`${entry()}/v1/tasks`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'idempotency-key': o.key!,
        },
        body: JSON.stringify({ title: o.title }),
      });
      expect(retried.status).toBe(201);
      const { rows: again } = await db.query(`SELECT id FROM tasks WHERE title = $1`, [o.title]);
      expect(again).toHaveLength(1);
    }
  });
});
