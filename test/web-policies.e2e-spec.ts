import { loadConfig } from '@app/config';
import { call, createTask, registerUser, type TestUser } from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { startApi } from './app';

/** Headers of helmet's that every response must carry, errors and probes included. */
const SECURITY_HEADERS = [
  'content-security-policy',
  'strict-transport-security',
  'x-content-type-options',
  'x-frame-options',
  'referrer-policy',
  'cross-origin-opener-policy',
  'cross-origin-resource-policy',
];

/**
 * Compression, security headers and CORS (issue 15, "what users also expect"): br or gzip for
 * bodies over 1 KiB, never for a single small resource; the security headers on every response,
 * with a policy the Swagger UI works under; CORS off by default, and on for the listed origins.
 */
describe('compression, security headers and CORS', () => {
  let app: NestFastifyApplication;
  let user: TestUser;
  let taskId: string;

  beforeAll(async () => {
    app = await startApi({ RATE_LIMIT_ENABLED: 'false' });
    user = await registerUser(app);
    taskId = (await createTask(app, user, { title: 'one small task' })).id;
    for (let i = 0; i < 10; i += 1) {
      await createTask(app, user, { title: `task ${i}`, description: 'words '.repeat(40) });
    }
  });
  afterAll(() => app.close());

  const get = (url: string, headers: Record<string, string> = {}) =>
    app.inject({
      method: 'GET',
      url,
      headers: { authorization: `Bearer ${user.accessToken}`, ...headers },
    });

  describe('compression', () => {
    it.each([
      ['br', brotliDecompressSync],
      ['gzip', gunzipSync],
    ] as const)(
      'a list over 1 KiB is sent %s when accepted, and decodes to the same JSON',
      async (encoding, decode) => {
        const plain = await get('/v1/tasks?limit=100', { 'accept-encoding': 'identity' });
        expect(plain.headers['content-encoding']).toBeUndefined();
        expect(plain.rawPayload.length).toBeGreaterThan(1024);
        const packed = await get('/v1/tasks?limit=100', { 'accept-encoding': `${encoding}` });
        expect(packed.statusCode).toBe(200);
        expect(packed.headers['content-encoding']).toBe(encoding);
        expect(packed.headers.vary).toMatch(/accept-encoding/i);
        expect(packed.rawPayload.length).toBeLessThan(plain.rawPayload.length / 2);
        expect(JSON.parse(decode(packed.rawPayload).toString())).toEqual(JSON.parse(plain.body));
      },
    );

    it('prefers br when both are accepted', async () => {
      const reply = await get('/v1/tasks?limit=100', { 'accept-encoding': 'gzip, deflate, br' });
      expect(reply.headers['content-encoding']).toBe('br');
    });

    it('sends a single task (under 1 KiB) as it is, whatever the client accepts', async () => {
      const reply = await get(`/v1/tasks/${taskId}`, { 'accept-encoding': 'br, gzip' });
      expect(reply.statusCode).toBe(200);
      expect(reply.headers['content-encoding']).toBeUndefined();
      expect(reply.json().id).toBe(taskId);
    });

    it('compresses /metrics for a scraper that accepts gzip', async () => {
      const reply = await app.inject({
        method: 'GET',
        url: '/metrics',
        headers: { 'accept-encoding': 'gzip' },
      });
      expect(reply.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(reply.rawPayload).toString()).toContain('http_requests_total');
    });
  });

  describe('security headers', () => {
    it.each([
      ['a read', () => get(`/v1/tasks/${taskId}`)],
      ['a 404 problem', () => get('/v1/nowhere')],
      ['a 401 problem', () => app.inject({ method: 'GET', url: '/v1/tasks' })],
      ['a 405 problem', () => app.inject({ method: 'DELETE', url: '/v1/tasks' })],
      ['the liveness probe', () => app.inject({ method: 'GET', url: '/health/live' })],
      ['/metrics', () => app.inject({ method: 'GET', url: '/metrics' })],
    ])('are on %s', async (_, send) => {
      const reply = await send();
      for (const header of SECURITY_HEADERS) expect(reply.headers[header]).toBeDefined();
      expect(reply.headers['x-content-type-options']).toBe('nosniff');
      expect(reply.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    });

    it('leave the Swagger UI working: no inline script, and everything it loads is ours and served', async () => {
      const page = await app.inject({ method: 'GET', url: '/docs' });
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      const csp = String(page.headers['content-security-policy']);
      expect(csp).toContain("script-src 'self'");
      // Under script-src 'self', an inline script would not run: every script has a src.
      const scripts = [...page.body.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
      expect(scripts.length).toBeGreaterThan(0);
      for (const [, attributes, inline] of scripts) {
        expect(attributes).toMatch(/\bsrc=/);
        expect(inline.trim()).toBe('');
      }
      const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map(([, url]) => url);
      expect(assets.length).toBeGreaterThan(2);
      for (const asset of assets) {
        // Relative to the page: nothing from another origin, which the policy would block.
        expect(asset).not.toMatch(/^(https?:)?\/\//);
        const url = new URL(asset, 'http://taskhub.test/docs').pathname;
        const served = await app.inject({ method: 'GET', url });
        expect({ url, status: served.statusCode }).toEqual({ url, status: 200 });
      }
    });
  });

  describe('CORS', () => {
    it('is off by default: no CORS header for any origin', async () => {
      const reply = await get(`/v1/tasks/${taskId}`, { origin: 'https://app.example.test' });
      expect(reply.statusCode).toBe(200);
      expect(reply.headers['access-control-allow-origin']).toBeUndefined();
    });

    describe('with CORS_ORIGINS', () => {
      let corsApp: NestFastifyApplication;
      beforeAll(async () => {
        corsApp = await startApi({
          RATE_LIMIT_ENABLED: 'false',
          CORS_ORIGINS: 'https://app.example.test, http://localhost:5173',
        });
      });
      afterAll(() => corsApp.close());

      it('answers a listed origin, and lets its scripts read our headers', async () => {
        const reply = await call(corsApp, {
          method: 'GET',
          url: `/v1/tasks/${taskId}`,
          token: user.accessToken,
          headers: { origin: 'http://localhost:5173' },
        });
        expect(reply.status).toBe(200);
        expect(reply.headers['access-control-allow-origin']).toBe('http://localhost:5173');
        expect(reply.headers['access-control-allow-credentials']).toBeUndefined();
        const exposed = String(reply.headers['access-control-expose-headers']).split(/,\s*/);
        expect(exposed).toEqual(
          expect.arrayContaining(['etag', 'x-request-id', 'ratelimit', 'retry-after', 'location']),
        );
      });

      it('gives an origin not listed nothing', async () => {
        const reply = await call(corsApp, {
          method: 'GET',
          url: `/v1/tasks/${taskId}`,
          token: user.accessToken,
          headers: { origin: 'https://evil.example.test' },
        });
        expect(reply.headers['access-control-allow-origin']).toBeUndefined();
      });

      it('answers a preflight for a write with the methods and headers it may send', async () => {
        const reply = await corsApp.inject({
          method: 'OPTIONS',
          url: '/v1/tasks',
          headers: {
            origin: 'https://app.example.test',
            'access-control-request-method': 'POST',
            'access-control-request-headers': 'authorization, content-type, idempotency-key',
          },
        });
        expect(reply.statusCode).toBe(204);
        expect(reply.headers['access-control-allow-origin']).toBe('https://app.example.test');
        expect(String(reply.headers['access-control-allow-methods'])).toContain('PATCH');
        const allowed = String(reply.headers['access-control-allow-headers']).split(/,\s*/);
        expect(allowed).toEqual(
          expect.arrayContaining(['authorization', 'content-type', 'idempotency-key', 'if-match']),
        );
        expect(reply.headers['access-control-max-age']).toBe('600');
      });
    });

    it.each([['*'], ['https://app.example.test/path'], ['app.example.test'], ['ftp://x.test']])(
      'refuses CORS_ORIGINS=%s at start',
      (origins) => {
        expect(() => loadConfig({ CORS_ORIGINS: origins })).toThrow(/CORS_ORIGINS/);
      },
    );
  });
});
