import { AccessTokenService, USER_SCOPES } from '@app/auth';
import { DEVELOPMENT_JWT_SECRET } from '@app/config';
import { call, registerUser } from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { sign } from 'jsonwebtoken';
import { createHmac, randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { startApi } from './app';
import { freePort, runBuilt, waitFor } from './processes';

describe('identity: register, login, refresh, me (CONTRACT §3)', () => {
  let app: NestFastifyApplication;
  let db: DataSource;
  beforeAll(async () => {
    app = await startApi();
    db = app.get(DataSource);
  });
  afterAll(() => app.close());

  const register = (body: unknown) => call(app, { method: 'POST', url: '/v1/auth/register', body });
  const login = (body: unknown) => call(app, { method: 'POST', url: '/v1/auth/login', body });
  const refresh = (refreshToken: string) =>
    call(app, { method: 'POST', url: '/v1/auth/refresh', body: { refreshToken } });
  const me = (token: string) => call(app, { method: 'GET', url: '/v1/users/me', token });

  describe('register', () => {
    it('creates the user and signs them in', async () => {
      const email = `Ada.${randomUUID()}@Example.test`;
      const reply = await register({ email, password: 'a long enough password', name: ' Ada ' });
      expect(reply.status).toBe(201);
      expect(reply.body).toEqual({
        user: {
          id: expect.stringMatching(/^[0-9a-f-]{36}$/),
          email: email.toLowerCase(),
          name: 'Ada',
          role: 'user',
          tier: 'free',
          createdAt: expect.any(String),
          updatedAt: expect.any(String),
        },
        accessToken: expect.any(String),
        refreshToken: expect.stringMatching(/^rt_/),
        expiresIn: 900,
        tokenType: 'Bearer',
      });
      expect((await me(reply.body.accessToken)).body.id).toBe(reply.body.user.id);
    });

    it('keeps only a scrypt hash of the password and a SHA-256 of the refresh token', async () => {
      const user = await registerUser(app, { password: 'plain text never stored' });
      const [row] = await db.query('SELECT password_hash FROM users WHERE id = $1', [user.id]);
      expect(row.password_hash).toMatch(/^scrypt\$/);
      expect(row.password_hash).not.toContain('plain text');
      const tokens = await db.query('SELECT token_hash FROM refresh_tokens WHERE user_id = $1', [
        user.id,
      ]);
      expect(tokens).toHaveLength(1);
      expect(tokens[0].token_hash).toHaveLength(32);
      expect(tokens[0].token_hash.toString('utf8')).not.toContain(user.refreshToken);
    });

    it('refuses a second account for the same email, whatever its case: 409', async () => {
      const user = await registerUser(app);
      const reply = await register({
        email: user.email.toUpperCase(),
        password: 'another password',
        name: 'B',
      });
      expect(reply.status).toBe(409);
      expect(reply.body.code).toBe('EMAIL_TAKEN');
    });

    it.each([
      [{ email: 'not-an-email', password: 'long enough pw', name: 'A' }, 'email'],
      [{ email: 'a@b.test', password: 'short', name: 'A' }, 'password'],
      [{ email: 'a@b.test', password: 'long enough pw', name: '' }, 'name'],
      [{ email: 'a@b.test', password: 'long enough pw', name: 'A', role: 'admin' }, 'role'],
    ])('refuses %o with a field error and creates nothing', async (body, field) => {
      const before = await db.query('SELECT count(*)::int AS n FROM users');
      const reply = await register(body);
      expect(reply.status).toBe(400);
      expect(reply.headers['content-type']).toContain('application/problem+json');
      expect(reply.body.code).toBe('VALIDATION_FAILED');
      expect(reply.body.errors.map((e: { field: string }) => e.field)).toContain(field);
      expect(await db.query('SELECT count(*)::int AS n FROM users')).toEqual(before);
    });
  });

  describe('login', () => {
    it('signs in with the right password, whatever the email case', async () => {
      const user = await registerUser(app);
      const reply = await login({ email: user.email.toUpperCase(), password: user.password });
      expect(reply.status).toBe(200);
      expect(reply.body.user.id).toBe(user.id);
      expect((await me(reply.body.accessToken)).status).toBe(200);
    });

    it('gives one identical 401 for a wrong password and for an unknown email', async () => {
      const user = await registerUser(app);
      const wrong = await login({ email: user.email, password: 'not the password' });
      const unknown = await login({
        email: `nobody-${randomUUID()}@example.test`,
        password: 'whatever',
      });
      for (const reply of [wrong, unknown]) {
        expect(reply.status).toBe(401);
        expect(reply.body.code).toBe('INVALID_CREDENTIALS');
      }
      const strip = ({ requestId: _r, ...rest }: Record<string, unknown>) => rest;
      expect(strip(wrong.body)).toEqual(strip(unknown.body));
    });
  });

  describe('refresh', () => {
    it('rotates: a new pair, and the spent token no longer works', async () => {
      const user = await registerUser(app);
      const first = await refresh(user.refreshToken);
      expect(first.status).toBe(200);
      expect(first.body.refreshToken).not.toBe(user.refreshToken);
      expect((await me(first.body.accessToken)).status).toBe(200);
      const second = await refresh(first.body.refreshToken);
      expect(second.status).toBe(200);
    });

    it('reuse of a spent token revokes the whole family', async () => {
      const user = await registerUser(app);
      const rotated = await refresh(user.refreshToken);
      expect(rotated.status).toBe(200);
      const replay = await refresh(user.refreshToken);
      expect(replay.status).toBe(401);
      expect(replay.body.code).toBe('INVALID_REFRESH_TOKEN');
      // The thief's replay also kills the token the rightful holder got.
      expect((await refresh(rotated.body.refreshToken)).status).toBe(401);
      // A new sign-in starts a new, healthy family.
      const again = await login({ email: user.email, password: user.password });
      expect((await refresh(again.body.refreshToken)).status).toBe(200);
    });

    it('two concurrent refreshes with one token: exactly one wins', async () => {
      const user = await registerUser(app);
      const replies = await Promise.all([refresh(user.refreshToken), refresh(user.refreshToken)]);
      expect(replies.map((r) => r.status).sort()).toEqual([200, 401]);
    });

    it.each(['', 'rt_unknown', 'garbage'])('refuses %p with 401 or 400', async (token) => {
      const reply = await refresh(token);
      expect([400, 401]).toContain(reply.status);
      expect(reply.headers['content-type']).toContain('application/problem+json');
    });

    it('refuses an expired refresh token', async () => {
      const user = await registerUser(app);
      await db.query(
        `UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE user_id = $1`,
        [user.id],
      );
      expect((await refresh(user.refreshToken)).status).toBe(401);
    });
  });

  describe('/v1/users/me and access tokens', () => {
    it('answers the caller, privately', async () => {
      const user = await registerUser(app);
      const reply = await me(user.accessToken);
      expect(reply.status).toBe(200);
      expect(reply.body).toMatchObject({ id: user.id, email: user.email });
      expect(reply.body).not.toHaveProperty('passwordHash');
      expect(reply.headers['cache-control']).toBe('private');
    });

    it('401 with WWW-Authenticate when no token is sent', async () => {
      const reply = await call(app, { method: 'GET', url: '/v1/users/me' });
      expect(reply.status).toBe(401);
      expect(reply.headers['www-authenticate']).toBe('Bearer');
      expect(reply.body.code).toBe('UNAUTHENTICATED');
    });

    describe('the JWT checks', () => {
      let user: Awaited<ReturnType<typeof registerUser>>;
      let kid: string;
      const now = () => Math.floor(Date.now() / 1000);
      const claims = () => ({
        sub: user.id,
        role: 'user',
        tier: 'free',
        iss: 'taskhub',
        aud: 'taskhub-api',
      });
      const signed = (
        payload: object,
        options: { kid?: string; secret?: string; algorithm?: 'HS256' | 'HS512' } = {},
      ) =>
        sign(payload, options.secret ?? DEVELOPMENT_JWT_SECRET, {
          algorithm: options.algorithm ?? 'HS256',
          keyid: options.kid ?? kid,
        });
      const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

      beforeAll(async () => {
        user = await registerUser(app);
        kid = app.get(AccessTokenService).signingKid;
      });

      it('accepts a well-formed token, and one expired within the 30 s clock tolerance', async () => {
        expect((await me(signed({ ...claims(), exp: now() + 60 }))).status).toBe(200);
        expect((await me(signed({ ...claims(), exp: now() - 10 }))).status).toBe(200);
      });

      const refused: [string, () => string][] = [
        [
          'alg none',
          () =>
            `${b64({ alg: 'none', typ: 'JWT', kid })}.${b64({ ...claims(), exp: now() + 60 })}.`,
        ],
        [
          'another algorithm (HS512)',
          () => signed({ ...claims(), exp: now() + 60 }, { algorithm: 'HS512' }),
        ],
        [
          'a bad signature',
          () =>
            signed(
              { ...claims(), exp: now() + 60 },
              { secret: 'another secret of enough length!!' },
            ),
        ],
        [
          'a tampered payload',
          () => {
            const [h, , s] = signed({ ...claims(), exp: now() + 60 }).split('.');
            return `${h}.${b64({ ...claims(), role: 'admin', exp: now() + 60 })}.${s}`;
          },
        ],
        ['expired beyond the tolerance', () => signed({ ...claims(), exp: now() - 60 })],
        ['nbf in the future', () => signed({ ...claims(), nbf: now() + 120, exp: now() + 600 })],
        ['a wrong iss', () => signed({ ...claims(), iss: 'someone-else', exp: now() + 60 })],
        ['a wrong aud', () => signed({ ...claims(), aud: 'another-api', exp: now() + 60 })],
        ['an unknown kid', () => signed({ ...claims(), exp: now() + 60 }, { kid: 'unknown' })],
        ['no exp', () => signed(claims())],
        ['a made-up role', () => signed({ ...claims(), role: 'root', exp: now() + 60 })],
        ['garbage', () => 'not.a.jwt'],
      ];
      it.each(refused)('refuses %s with 401 invalid_token', async (_name, token) => {
        const reply = await me(token());
        expect(reply.status).toBe(401);
        expect(reply.body.code).toBe('UNAUTHENTICATED');
        expect(reply.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
      });

      // The rotated instance is a separate process: passport's strategies are process-wide, so
      // two apps in one process would share one verifier.
      it('after a rotation, a token signed with the previous secret is accepted until it expires', async () => {
        const port = await freePort();
        const base = `http://127.0.0.1:${port}`;
        const rotated = runBuilt('api', {
          PORT: String(port),
          JWT_SECRET: 'the next secret, at least 32 characters long',
          JWT_PREVIOUS_SECRETS: DEVELOPMENT_JWT_SECRET,
        });
        const meOn = (token: string) =>
          fetch(`${base}/v1/users/me`, { headers: { authorization: `Bearer ${token}` } });
        try {
          await waitFor(`${base}/health/ready`);
          expect((await meOn(user.accessToken)).status).toBe(200);
          expect((await meOn(signed({ ...claims(), exp: now() + 60 }))).status).toBe(200);
          // A previous secret only verifies, with every other check still made.
          expect((await meOn(signed({ ...claims(), exp: now() - 60 }))).status).toBe(401);
          // New tokens carry the new kid, which an instance not yet rotated does not know.
          const fresh = await fetch(`${base}/v1/auth/login`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ email: user.email, password: user.password }),
          });
          expect(fresh.status).toBe(200);
          const { accessToken } = (await fresh.json()) as { accessToken: string };
          expect((await meOn(accessToken)).status).toBe(200);
          expect((await me(accessToken)).status).toBe(401);
        } finally {
          rotated.child.kill('SIGTERM');
          await rotated.exited;
        }
      });

      it('the HMAC really is over header.payload with the secret (sanity check of the matrix)', () => {
        const token = signed({ ...claims(), exp: now() + 60 });
        const [h, p, s] = token.split('.');
        const expected = createHmac('sha256', DEVELOPMENT_JWT_SECRET)
          .update(`${h}.${p}`)
          .digest('base64url');
        expect(s).toBe(expected);
      });
    });

    it('whoami answers from the token alone', async () => {
      const user = await registerUser(app);
      const reply = await call(app, {
        method: 'GET',
        url: '/v1/auth/whoami',
        token: user.accessToken,
      });
      expect(reply.status).toBe(200);
      expect(reply.body).toEqual({
        credential: 'accessToken',
        userId: user.id,
        role: 'user',
        tier: 'free',
        scopes: [...USER_SCOPES],
      });
      expect(reply.body.scopes).not.toContain('admin');
    });

    it('a valid token for a deleted user is refused', async () => {
      const user = await registerUser(app);
      await db.query('DELETE FROM users WHERE id = $1', [user.id]);
      expect((await me(user.accessToken)).status).toBe(401);
    });
  });
});
