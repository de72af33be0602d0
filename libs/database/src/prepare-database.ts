import { Client } from 'pg';
import type { DataSource } from 'typeorm';

// A lost race shows as either: the catalog's unique index can fire before the duplicate check.
const DUPLICATE_DATABASE = ['42P04', '23505'];
// Any constant will do: every process that migrates this database takes the same lock.
const MIGRATION_LOCK_KEY = 7_284_011;

/** Creates the database named in `url` when it does not exist yet (safe when raced). */
export async function ensureDatabase(url: string, connectTimeoutMs = 5000): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  if (!name) throw new Error('DATABASE_URL names no database');
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new Client({
    connectionString: admin.toString(),
    connectionTimeoutMillis: connectTimeoutMs,
  });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return;
    try {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
    } catch (error) {
      if (!DUPLICATE_DATABASE.includes((error as { code?: string }).code ?? '')) throw error;
    }
  } finally {
    await client.end();
  }
}

/**
 * Applies pending migrations under a Postgres advisory lock, so replicas starting together
 * migrate once and the others wait for it. Returns the names of the migrations applied.
 */
export async function runMigrations(dataSource: DataSource): Promise<string[]> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      const applied = await dataSource.runMigrations({ transaction: 'each' });
      return applied.map((migration) => migration.name);
    } finally {
      await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await runner.release();
  }
}

/** The migrations this build knows that the database has not applied, in order. Reads only. */
export async function pendingMigrations(dataSource: DataSource): Promise<string[]> {
  const table = dataSource.options.migrationsTableName ?? 'migrations';
  // No migrations table yet (an empty database) means none applied. TypeORM's own check
  // (showMigrations) would create the table, which a role without DDL rights may not.
  const [{ exists }] = await dataSource.query<[{ exists: boolean }]>(
    'SELECT to_regclass($1) IS NOT NULL AS exists',
    [table],
  );
  const rows: Array<{ name: string }> = exists
    ? await dataSource.query(`SELECT name FROM ${dataSource.driver.escape(table)}`)
    : [];
  const applied = new Set(rows.map((row) => row.name));
  return dataSource.migrations
    .map((migration) => migration.name ?? migration.constructor.name)
    .filter((name) => !applied.has(name));
}

/**
 * Start-up refused with DATABASE_MIGRATE_ON_START=false: the database or its schema is not what
 * this build needs, and the app may not fix it. Waiting would not fix it either.
 */
export class SchemaNotReadyError extends Error {
  override name = 'SchemaNotReadyError';

  constructor(problem: string) {
    super(
      `${problem}. DATABASE_MIGRATE_ON_START is false, so run the migrations first with a role ` +
        'that may change the schema: node dist/apps/api/apps/api/src/migrate.js run',
    );
  }
}
