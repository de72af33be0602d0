import { loadConfig } from '@app/config';
import { MIGRATIONS } from '@app/migrations';
import { eventually } from '@app/testing';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { databaseUrl, dropDatabase, ownDatabase } from './databases';
import { type Running, freePort, runBuilt, send, startBuiltApi, waitFor } from './processes';
import { deleteJobQueues } from './queues';

/** Runs `sql` on `url` and closes the connection. */
async function query<T = Record<string, unknown>>(
  url: string,
  sql: string,
  values: unknown[] = [],
): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, values)).rows as T[];
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
    const last = JSON.parse(run.stdout().trim().split('\n').at(-1) ?? '{}');
    expect(last).toEqual(
      expect.objectContaining({
        level: 60,
        msg: `${app} failed to start`,
        err: expect.objectContaining({
          type: 'SchemaNotReadyError',
          message: expect.stringContaining(
            `${problem}. DATABASE_MIGRATE_ON_START is false, so run the migrations first`,
          ),
        }),
      }),
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

/**
 * The deployment README "Database and migrations" describes, for real: in a database of the
 * spec's own, a migrating role and an app role of this run's own (roles are cluster-wide), the
 * built migrate command run as the one, migrations/roles.sql applied as written (only the role
 * names replaced), and the built api and worker run as the other with
 * DATABASE_MIGRATE_ON_START=false. The app role reads and writes, keeps the request log's
 * partitions through the SECURITY DEFINER functions, and can change no schema.
 */
describe('a migrating role and an app role without DDL (migrations/roles.sql)', () => {
  const database = ownDatabase('roles');
  const migrator = `${database.name}_migrator`;
  const app = `${database.name}_app`;
  const as = (role: string): string => {
    const url = new URL(database.url);
    url.username = role;
    return url.toString();
  };
  const admin = databaseUrl('postgres');
  const inDatabase = database.url; // as the superuser, to look
  const PREFIX = `${loadConfig().rabbitmq.queuePrefix}roles-${randomUUID()}.`;
  const appEnv = {
    DATABASE_URL: as(app),
    DATABASE_MIGRATE_ON_START: 'false',
    RABBITMQ_QUEUE_PREFIX: PREFIX,
    REQUEST_LOG_ENABLED: 'true',
    REQUEST_LOG_FLUSH_MS: '100',
  };
  let api: { run: Running; base: string } | undefined;
  let worker: Running | undefined;
  let expired: string;

  const migrate = async (command: 'run' | 'revert'): Promise<string> => {
    const run = runBuilt('migrate', { DATABASE_URL: as(migrator) }, [command]);
    const exited = await run.exited;
    if (exited.code !== 0) throw new Error(`migrate ${command} failed: ${run.stderr()}`);
    return run.stdout();
  };

  const partitions = () =>
    query<{ name: string; owner: string }>(
      inDatabase,
      `SELECT c.relname AS name, c.relowner::regrole::text AS owner
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'request_logs'::regclass ORDER BY 1`,
    );

  beforeAll(async () => {
    // What README "Database and migrations" has a superuser run first (no passwords: trust auth).
    await query(admin, `CREATE ROLE "${migrator}" LOGIN`);
    await query(admin, `CREATE ROLE "${app}" LOGIN`);
    await query(admin, `CREATE DATABASE "${database.name}" OWNER "${migrator}"`);
    expect(await migrate('run')).toMatch(/^Applied: Init1795392000000, .*RequestLogPartition/);
    const grants = readFileSync(join(__dirname, '../migrations/roles.sql'), 'utf8')
      .replaceAll('taskhub_migrator', migrator)
      .replaceAll('taskhub_app', app);
    await query(as(migrator), grants);
    // A partition past retention, as the worker would have made it long ago: the worker's
    // maintenance at start must drop it.
    [{ expired }] = await query<{ expired: string }>(
      as(migrator),
      `SELECT request_logs_create_partition(day), 'request_logs_p' || to_char(day, 'YYYYMMDD')
                AS expired
         FROM (SELECT (now() AT TIME ZONE 'UTC')::date - 400 AS day) d`,
    );
    expect((await partitions()).map((p) => p.name)).toEqual([expired]);

    api = await startBuiltApi(appEnv);
    const workerPort = await freePort();
    worker = runBuilt('worker', { ...appEnv, WORKER_PORT: String(workerPort) });
    await waitFor(`http://127.0.0.1:${workerPort}/health/ready`);
  });

  afterAll(async () => {
    for (const run of [api?.run, worker]) {
      if (!run || run.child.exitCode !== null) continue;
      run.child.kill('SIGTERM');
      await run.exited;
    }
    await deleteJobQueues(loadConfig({ RABBITMQ_QUEUE_PREFIX: PREFIX }));
    await dropDatabase(database.name);
    for (const role of [app, migrator]) {
      const [found] = await query(admin, 'SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
      if (!found) continue;
      await query(admin, `DROP OWNED BY "${role}"`);
      await query(admin, `DROP ROLE "${role}"`);
    }
  });

  it('the migrating role owns the schema; the app role owns nothing', async () => {
    const owners = await query<{ owner: string }>(
      inDatabase,
      `SELECT DISTINCT relowner::regrole::text AS owner FROM pg_class
        WHERE relnamespace = 'public'::regnamespace`,
    );
    expect(owners).toEqual([{ owner: migrator }]);
  });

  it('the api serves writes and reads as the app role, and the worker keeps their log in partitions it made', async () => {
    const { base } = api!;
    const email = `roles-${randomUUID()}@example.test`;
    const password = `pw-${randomUUID()}`;
    const account = { email, password, name: 'App Role' };
    const registered = await send(base, 'POST', '/v1/auth/register', {}, account);
    expect(registered.status).toBe(201);
    const login = await send(base, 'POST', '/v1/auth/login', {}, { email, password });
    expect(login.status).toBe(200);
    const token = login.body.accessToken as string;
    const created = await send(base, 'POST', '/v1/tasks', { token }, { title: 'as taskhub_app' });
    expect(created.status).toBe(201);
    const read = await send(base, 'GET', `/v1/tasks/${created.body.id}`, { token });
    expect([read.status, read.body.title]).toEqual([200, 'as taskhub_app']);

    // The worker, as the app role, stored those requests' log: in a partition it had made through
    // request_logs_create_partition (so the migrating role owns it), and it dropped the partition
    // past retention through request_logs_drop_partition at start.
    const requestIds = [registered, login, created, read].map((r) => r.headers.get('x-request-id'));
    const stored = await eventually(
      () =>
        query<{ partition: string; owner: string; rows: number }>(
          inDatabase,
          `SELECT l.tableoid::regclass::text AS partition, c.relowner::regrole::text AS owner,
                  count(*)::int AS rows
             FROM request_logs l JOIN pg_class c ON c.oid = l.tableoid
            WHERE l.request_id = ANY($1) GROUP BY 1, 2`,
          [requestIds],
        ),
      (rows) => rows.reduce((n, row) => n + row.rows, 0) === requestIds.length,
      15_000,
      100,
    );
    expect(stored.reduce((n, row) => n + row.rows, 0)).toBe(requestIds.length);
    for (const row of stored) {
      expect(row.partition).toMatch(/^request_logs_p\d{8}$/);
      expect(row.owner).toBe(migrator);
    }
    const names = async () => (await partitions()).map((p) => p.name);
    expect(await eventually(names, (kept) => !kept.includes(expired), 10_000, 100)).toEqual(
      [...new Set(stored.map((row) => row.partition))].sort(),
    );
  });

  it('the app role can change no schema', async () => {
    const refused = (sql: string) => expect(query(as(app), sql)).rejects;
    await refused('CREATE TABLE x ()').toMatchObject({
      code: '42501',
      message: 'permission denied for schema public',
    });
    await refused('CREATE TEMP TABLE x ()').toMatchObject({ code: '42501' });
    await refused('CREATE SCHEMA x').toMatchObject({ code: '42501' });
    await refused('DROP TABLE tasks').toMatchObject({
      code: '42501',
      message: 'must be owner of table tasks',
    });
    await refused('ALTER TABLE tasks ADD COLUMN x int').toMatchObject({ code: '42501' });
    await refused('TRUNCATE request_logs').toMatchObject({ code: '42501' });
    await refused(
      `CREATE TABLE request_logs_p20991231 PARTITION OF request_logs
         FOR VALUES FROM ('2099-12-31 00:00:00+00') TO ('2100-01-01 00:00:00+00')`,
    ).toMatchObject({ code: '42501' });
  });

  it('the partition functions take a day in bounds, and drop only past partitions of request_logs', async () => {
    const today = `(now() AT TIME ZONE 'UTC')::date`;
    const call = (sql: string) => query<{ result: unknown }>(as(app), `SELECT ${sql} AS result`);
    const invalid = { code: '22023' };
    await expect(call(`request_logs_create_partition(${today} - 3652)`)).rejects.toMatchObject(
      invalid,
    );
    await expect(call(`request_logs_create_partition(${today} + 8)`)).rejects.toMatchObject(
      invalid,
    );
    await expect(call('request_logs_create_partition(NULL)')).rejects.toMatchObject(invalid);
    await expect(call(`request_logs_drop_partition(${today})`)).rejects.toMatchObject(invalid);
    // A table that has a partition's name but is not one is left alone, as is a missing day.
    await query(as(migrator), 'CREATE TABLE request_logs_p20200102 (x int)');
    expect(await call(`request_logs_drop_partition('2020-01-02')`)).toEqual([{ result: false }]);
    expect(await call(`request_logs_drop_partition('2020-01-03')`)).toEqual([{ result: false }]);
    expect(
      await query(inDatabase, `SELECT to_regclass('request_logs_p20200102') IS NOT NULL AS found`),
    ).toEqual([{ found: true }]);
    // Made and dropped again by the app role, owned by the migrating role meanwhile.
    expect(await call(`request_logs_create_partition(${today} - 30)`)).toEqual([{ result: '' }]);
    const [{ name }] = await query<{ name: string }>(
      inDatabase,
      `SELECT 'request_logs_p' || to_char(${today} - 30, 'YYYYMMDD') AS name`,
    );
    expect(await partitions()).toContainEqual({ name, owner: migrator });
    expect(await call(`request_logs_drop_partition(${today} - 30)`)).toEqual([{ result: true }]);

    // SECURITY DEFINER with a pinned search_path, and no EXECUTE for PUBLIC.
    const functions = await query(
      inDatabase,
      `SELECT proname AS name, prosecdef AS definer, proconfig AS config,
              proowner::regrole::text AS owner,
              has_function_privilege('public', oid, 'EXECUTE') AS public
         FROM pg_proc WHERE proname LIKE 'request_logs_%' ORDER BY 1`,
    );
    expect(functions).toEqual(
      ['request_logs_create_partition', 'request_logs_drop_partition'].map((name) => ({
        name,
        definer: true,
        config: ['search_path=public, pg_temp'],
        owner: migrator,
        public: false,
      })),
    );
  });

  it('the default privileges grant the app role what a later migration makes, and no more', async () => {
    await query(
      as(migrator),
      `CREATE TABLE later_table (id int);
       CREATE SEQUENCE later_sequence;
       CREATE FUNCTION later_function() RETURNS int LANGUAGE sql AS 'SELECT 1'`,
    );
    const [granted] = await query(
      inDatabase,
      `SELECT has_table_privilege($1, 'later_table', 'SELECT, INSERT, UPDATE, DELETE') AS rows,
              has_table_privilege($1, 'later_table', 'TRUNCATE') AS truncate,
              has_sequence_privilege($1, 'later_sequence', 'USAGE, SELECT') AS sequence,
              has_function_privilege($1, 'later_function()', 'EXECUTE') AS function`,
      [app],
    );
    expect(granted).toEqual({ rows: true, truncate: false, sequence: true, function: true });
  });

  it('migrate reverts the last migration and applies it again, as the migrating role', async () => {
    const last = new MIGRATIONS[MIGRATIONS.length - 1]().name;
    expect(await migrate('revert')).toBe('Reverted the last migration.\n');
    expect(await migrate('run')).toBe(`Applied: ${last}\n`);
    expect(await migrate('run')).toBe('Up to date.\n');
    const [{ allowed }] = await query<{ allowed: boolean }>(
      inDatabase,
      `SELECT has_function_privilege($1, 'request_logs_create_partition(date)', 'EXECUTE')
          AS allowed`,
      [app],
    );
    expect(allowed).toBe(true);
  });
});
