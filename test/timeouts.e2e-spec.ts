import { FaultProxy } from '@app/testing';
import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { performance } from 'node:perf_hooks';
import { startApi } from './app';
import { proxiedDatabase } from './databases';
import { parseResponse, slowClient } from './slow-clients';

const LOGIN_HEAD = (length: number) =>
  'POST /v1/auth/login HTTP/1.1\r\nHost: taskhub.test\r\nContent-Type: application/json\r\n' +
  `Content-Length: ${length}\r\n\r\n`;

/**
 * Every phase of a request is bounded (issue 13, item 5): headers (HTTP_HEADERS_TIMEOUT_MS) and
 * the whole request (HTTP_REQUEST_TIMEOUT_MS) with a 408 problem and the connection closed, the
 * handler (HTTP_HANDLER_TIMEOUT_MS) with a 503 problem and its late reply dropped quietly. Bounds
 * are small here; the assertions allow the check interval (0.5 s) plus slack for a loaded CI.
 */
describe('request timeouts', () => {
  let app: NestFastifyApplication;
  let port: number;
  let errors: jest.SpyInstance;
  beforeAll(async () => {
    app = await startApi({ HTTP_HEADERS_TIMEOUT_MS: '1000', HTTP_REQUEST_TIMEOUT_MS: '2000' });
    await app.listen(0, '127.0.0.1');
    port = (app.getHttpServer().address() as { port: number }).port;
  });
  beforeEach(() => (errors = jest.spyOn(Logger.prototype, 'error')));
  afterEach(() => errors.mockRestore());
  afterAll(() => app.close());

  const expectRequestTimeout = (text: string) => {
    const response = parseResponse(text);
    expect(response.status).toBe(408);
    expect(response.headers['content-type']).toBe('application/problem+json');
    expect(response.headers.connection).toBe('close');
    expect(response.body).toEqual(
      expect.objectContaining({
        status: 408,
        code: 'REQUEST_TIMEOUT',
        instance: expect.any(String),
      }),
    );
    expect(response.headers['x-request-id']).toBe(response.body.requestId);
    return response;
  };

  it('answers a body sent a byte a second 408 within the request bound, and closes', async () => {
    const body = JSON.stringify({ email: 'slow@example.test', password: 'a long password' });
    const clients = Array.from({ length: 10 }, () =>
      slowClient(port, LOGIN_HEAD(body.length), body),
    );
    const results = await Promise.all(clients.map((client) => client.closed));
    for (const { text, ms } of results) {
      // The problem names the request it cut short: Fastify had routed it, the body was arriving.
      expect(expectRequestTimeout(text).body.instance).toBe('/v1/auth/login');
      expect(ms).toBeGreaterThan(1900);
      expect(ms).toBeLessThan(5000);
    }
    // A client that was slow is no server error.
    expect(errors).not.toHaveBeenCalled();
  });

  it('answers headers sent a byte a second 408 within the headers bound, and closes', async () => {
    const client = slowClient(port, 'GET /health/live HTTP/1.1\r\n', 'Host: taskhub.test\r\n\r\n');
    const { text, ms } = await client.closed;
    expectRequestTimeout(text);
    expect(ms).toBeGreaterThan(900);
    expect(ms).toBeLessThan(4000);
  });

  it('answers other malformed requests with a problem too', async () => {
    const huge = slowClient(port, `GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, '');
    const tooLarge = parseResponse((await huge.closed).text);
    expect(tooLarge.status).toBe(431);
    expect(tooLarge.body.code).toBe('HEADERS_TOO_LARGE');
    const garbage = slowClient(port, 'NOT HTTP AT ALL\r\n\r\n', '');
    const bad = parseResponse((await garbage.closed).text);
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('BAD_REQUEST');
  });

  it.each([
    ['a control character in a header value', 'X-A: a\u0001b'],
    ['NUL in a header value', 'X-A: a\u0000b'],
    ['DEL in a header value', 'X-A: a\u007fb'],
    ['a control character in a header name', 'X\u0001A: b'],
    ['a lone CR in a header value', 'X-A: a\rb'],
    ['a control character in a credential', 'Authorization: Bearer a\u0001b'],
  ])('answers %s with a 400 problem with X-Request-ID, and closes', async (_, header) => {
    const client = slowClient(port, `GET /v1/tasks HTTP/1.1\r\nHost: t\r\n${header}\r\n\r\n`, '');
    const response = parseResponse((await client.closed).text);
    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toBe('application/problem+json');
    expect(response.headers.connection).toBe('close');
    expect(response.body).toEqual(expect.objectContaining({ status: 400, code: 'BAD_REQUEST' }));
    expect(response.headers['x-request-id']).toBe(response.body.requestId);
  });

  it('lets a request that arrives in time take as long as it needs to send', async () => {
    const response = await fetch(`http://127.0.0.1:${port}/health/live`);
    expect(response.status).toBe(200);
  });
});

describe('the handler timeout, with Postgres black-holed', () => {
  let app: NestFastifyApplication;
  let proxy: FaultProxy;
  let base: string;
  beforeAll(async () => {
    const proxied = await proxiedDatabase();
    proxy = proxied.proxy;
    app = await startApi({
      DATABASE_URL: proxied.url,
      HTTP_HANDLER_TIMEOUT_MS: '1000',
      // The database bound is longer than the handler's: the handler is still waiting at 1 s.
      DATABASE_STATEMENT_TIMEOUT_MS: '30000',
      BREAKER_POSTGRES_TIMEOUT_MS: '3000',
      RATE_LIMIT_ENABLED: 'false',
    });
    await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await proxy.set({ kind: 'pass' });
    await app.close();
    await proxy.close();
  });

  it('answers 503 HANDLER_TIMEOUT within the bound, and drops the late reply quietly', async () => {
    const errors = jest.spyOn(Logger.prototype, 'error');
    try {
      await proxy.set({ kind: 'blackhole' });
      const started = performance.now();
      const response = await fetch(`${base}/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'hang@example.test', password: 'a long password' }),
      });
      const ms = performance.now() - started;
      expect(response.status).toBe(503);
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(response.headers.get('retry-after')).toBe('1');
      const problem = (await response.json()) as { code: string; requestId: string };
      expect(problem.code).toBe('HANDLER_TIMEOUT');
      expect(response.headers.get('x-request-id')).toBe(problem.requestId);
      expect(ms).toBeGreaterThan(900);
      expect(ms).toBeLessThan(2900); // before the database's own bound (3 s) ends the handler
      // The handler ends later (the breaker's 3 s): its failure is neither sent nor logged.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      expect(errors).not.toHaveBeenCalled();
      await proxy.set({ kind: 'pass' });
      expect((await fetch(`${base}/health/live`)).status).toBe(200);
    } finally {
      errors.mockRestore();
    }
  });
});
