import { UNSUBSCRIBED_TRUST_MS } from '@app/auth';
import { loadConfig } from '@app/config';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { send, startBuiltApi } from './processes';

/**
 * API keys across instances: a revocation reaches another api process within a second, through
 * Redis or, with Redis out, by re-checking; and no secret ends up in the database or the logs.
 * The other instances are separate processes, as in production (passport's strategies are
 * process-wide, so two apps in one process would share one verifier).
 */
describe('API keys across instances', () => {
  const password = 'a password nobody should ever see';
  const db = new DataSource({ type: 'postgres', url: loadConfig().database.url });
  beforeAll(() => db.initialize());
  afterAll(() => db.destroy());

  /** Polls GET /v1/auth/whoami with `key` until it is refused; how long that took (ms). */
  async function refusedWithin(base: string, key: string, limitMs: number): Promise<number> {
    const started = Date.now();
    for (;;) {
      const { status } = await send(base, 'GET', '/v1/auth/whoami', { key });
      if (status === 401) return Date.now() - started;
      expect(status).toBe(200);
      if (Date.now() - started > limitMs) return Infinity;
      await sleep(20);
    }
  }

  it('revocation through one instance reaches another within 1 s; nothing secret is stored or logged', async () => {
    const [first, second] = await Promise.all([startBuiltApi(), startBuiltApi()]);
    try {
      const email = `instances-${Date.now()}@example.test`;
      const registered = await send(first.base, 'POST', '/v1/auth/register', undefined, {
        email,
        password,
        name: 'Two Instances',
      });
      expect(registered.status).toBe(201);
      const login = await send(second.base, 'POST', '/v1/auth/login', undefined, {
        email,
        password,
      });
      expect(login.status).toBe(200);
      const token: string = login.body.accessToken;
      const newKey = async () => {
        const created = await send(
          first.base,
          'POST',
          '/v1/api-keys',
          { token },
          {
            name: 'shared',
            scopes: ['tasks:read'],
          },
        );
        expect(created.status).toBe(201);
        return created.body as { id: string; key: string };
      };
      const stale = await newKey();
      const revoked = await newKey();
      // Both verified, and so cached, on the second instance.
      for (const { key } of [stale, revoked]) {
        expect((await send(second.base, 'GET', '/v1/auth/whoami', { key })).status).toBe(200);
      }

      // The cache is real: a revocation written behind the api's back (no message) is not seen
      // by an instance that is listening to the channel, even after the 1 s re-check window.
      await db.query(`UPDATE api_keys SET revoked_at = now() WHERE id = $1`, [stale.id]);
      await sleep(UNSUBSCRIBED_TRUST_MS + 300);
      expect((await send(second.base, 'GET', '/v1/auth/whoami', { key: stale.key })).status).toBe(
        200,
      );

      // A revocation through the api is published: the other instance drops the key.
      expect(
        (await send(first.base, 'DELETE', `/v1/api-keys/${revoked.id}`, { token })).status,
      ).toBe(204);
      const elapsed = await refusedWithin(second.base, revoked.key, 2000);
      expect(elapsed).toBeLessThan(1000);

      // Nothing secret in the database...
      const secrets = [password, token, login.body.refreshToken, registered.body.accessToken];
      secrets.push(registered.body.refreshToken, stale.key, revoked.key);
      const tables: { table_name: string }[] = await db.query(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`,
      );
      expect(tables.map((t) => t.table_name)).toEqual(
        expect.arrayContaining(['users', 'api_keys', 'refresh_tokens', 'idempotency_keys']),
      );
      for (const { table_name } of tables) {
        const rows: { row: string }[] = await db.query(
          `SELECT row_to_json(t)::text AS row FROM "${table_name}" t`,
        );
        const dump = rows.map((r) => r.row).join('\n');
        for (const secret of secrets) expect(dump).not.toContain(secret);
      }
      // ...nor in the logs of either instance (written in batches: complete once they exit).
      for (const { run } of [first, second]) run.child.kill('SIGTERM');
      await Promise.all([first.run.exited, second.run.exited]);
      const logs = [first, second].map(({ run }) => run.stdout() + run.stderr()).join('\n');
      expect(logs).toContain('"path":"/v1/auth/whoami"');
      expect(logs).toContain('"path":"/v1/api-keys"');
      for (const secret of secrets) expect(logs).not.toContain(secret);
      // Nor any key-looking string at all.
      expect(logs).not.toMatch(/thk_[0-9A-Za-z]{38}/);
    } finally {
      for (const { run } of [first, second]) run.child.kill('SIGTERM');
      await Promise.all([first.run.exited, second.run.exited]);
    }
  });

  it('with Redis unreachable, an instance re-checks its cached keys: a revocation lands within 1 s', async () => {
    const blind = await startBuiltApi({ REDIS_URL: 'redis://127.0.0.1:1' });
    try {
      const user = await send(blind.base, 'POST', '/v1/auth/register', undefined, {
        email: `blind-${Date.now()}@example.test`,
        password,
        name: 'No Redis',
      });
      expect(user.status).toBe(201);
      const created = await send(
        blind.base,
        'POST',
        '/v1/api-keys',
        {
          token: user.body.accessToken,
        },
        { name: 'k', scopes: ['tasks:read'] },
      );
      expect(created.status).toBe(201);
      const { id, key } = created.body as { id: string; key: string };
      expect((await send(blind.base, 'GET', '/v1/auth/whoami', { key })).status).toBe(200);
      // Revoked where no message can reach this instance (its Redis is out).
      await db.query(`UPDATE api_keys SET revoked_at = now() WHERE id = $1`, [id]);
      const elapsed = await refusedWithin(blind.base, key, 3000);
      expect(elapsed).toBeLessThan(1000);
    } finally {
      blind.run.child.kill('SIGTERM');
      await blind.run.exited;
    }
  });
});
