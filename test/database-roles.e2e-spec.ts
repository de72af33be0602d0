import { MIGRATIONS } from '@app/migrations';
import { Client } from 'pg';
import { databaseUrl, dropDatabase, ownDatabase } from './databases';
import { freePort, runBuilt } from './processes';

/** Runs `sql` on `url` and closes the connection. */
async function query<T = Record<string, unknown>>(url: string, sql: string): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

/**
 * The apps with DATABASE_MIGRATE_ON_START=false change nothing in the database: they neither
 * create it nor migrate it, and exit 1 at once (no retries) with one line saying what is missing.
 * Run as the superuser here, so that nothing but the setting keeps them from DDL.
 */
describe('DATABASE_MIGRATE_ON_START=false', () => {
  const empty = ownDatabase('unmigrated');
  const missing = ownDatabase('never_created');

  beforeAll(() => query(databaseUrl('postgres'), `CREATE DATABASE "${empty.name}"`));
  afterAll(async () => {
    await dropDatabase(empty.name);
    await dropDatabase(missing.name);
  });

  /** Starts the built `app` on `url` and expects it to exit 1 at once, saying `problem`. */
  const refuses = async (app: 'api' | 'worker', url: string, problem: string) => {
    const run = runBuilt(app, {
      DATABASE_URL: url,
      DATABASE_MIGRATE_ON_START: 'false',
      PORT: String(await freePort()),
      WORKER_PORT: String(await freePort()),
    });
    const started = Date.now();
    expect(await run.exited).toEqual({ code: 1, signal: null });
    // Not after TypeOrmModule's retries (9 × 3 s): nothing would change meanwhile.
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(run.stderr()).toContain(
      `${app} failed to start: SchemaNotReadyError: ${problem}. DATABASE_MIGRATE_ON_START is ` +
        'false, so run the migrations first',
    );
  };

  it.each(['api', 'worker'] as const)(
    'the %s on an empty database creates no table and exits 1, naming the migrations not applied',
    async (app) => {
      const names = MIGRATIONS.map((migration) => new migration().name);
      await refuses(
        app,
        empty.url,
        `the database schema is behind this build: ${names.length} migration(s) not applied ` +
          `(${names.join(', ')})`,
      );
      const objects = await query(
        empty.url,
        `SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace`,
      );
      expect(objects).toEqual([]);
    },
  );

  it.each(['api', 'worker'] as const)(
    'the %s on a missing database does not create it, and exits 1 at once',
    async (app) => {
      await refuses(app, missing.url, `database "${missing.name}" does not exist`);
      const found = await query(
        databaseUrl('postgres'),
        `SELECT 1 FROM pg_database WHERE datname = '${missing.name}'`,
      );
      expect(found).toEqual([]);
    },
  );
});
