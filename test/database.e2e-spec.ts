import { loadConfig } from '@app/config';
import { MIGRATIONS } from '@app/migrations';
import { call, createTask, registerUser } from '@app/testing';
import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { startApi } from './app';
import { databaseUrl, dropDatabase } from './databases';

describe('database start-up', () => {
  it('two api instances starting on a missing database create it and migrate it once', async () => {
    const name = `taskhub_test_fresh_${randomBytes(4).toString('hex')}`;
    try {
      const apps = await Promise.all([
        startApi({ DATABASE_URL: databaseUrl(name) }),
        startApi({ DATABASE_URL: databaseUrl(name) }),
      ]);
      try {
        const migrations = await apps[0]
          .get(DataSource)
          .query('SELECT name FROM migrations ORDER BY id');
        expect(migrations).toEqual(MIGRATIONS.map((migration) => ({ name: migration.name })));
        expect(migrations.length).toBeGreaterThan(1);
        const user = await registerUser(apps[1]);
        const task = await createTask(apps[1], user);
        const read = await call(apps[0], {
          method: 'GET',
          url: `/v1/tasks/${task.id}`,
          token: user.accessToken,
        });
        expect(read.status).toBe(200);
      } finally {
        await Promise.all(apps.map((app) => app.close()));
      }
    } finally {
      await dropDatabase(name);
    }
  });

  it('reads go through DATABASE_REPLICA_URLS when set (here the replica is the primary itself)', async () => {
    const primary = loadConfig().database.url;
    const app = await startApi({ DATABASE_REPLICA_URLS: primary });
    try {
      const dataSource = app.get(DataSource);
      expect(dataSource.options).toMatchObject({ replication: { slaves: [{ url: primary }] } });
      const user = await registerUser(app);
      const task = await createTask(app, user);
      const list = await call(app, { method: 'GET', url: '/v1/tasks', token: user.accessToken });
      expect(list.body.data.map((t: { id: string }) => t.id)).toEqual([task.id]);
    } finally {
      await app.close();
    }
  });
});
