import { loadConfig } from '@app/config';
import { FaultProxy } from '@app/testing';
import { Client } from 'pg';

/** A database URL like this run's, naming another database. */
export function databaseUrl(name: string): string {
  const url = new URL(loadConfig().database.url);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * A database of a spec's own, named after this run's (`<run's database>_<suffix>`), for specs
 * whose assertions cover a whole table. The api creates and migrates it when it first starts on
 * it; drop it in afterAll.
 */
export function ownDatabase(suffix: string): { name: string; url: string } {
  const run = decodeURIComponent(new URL(loadConfig().database.url).pathname.slice(1));
  const name = `${run}_${suffix}`;
  return { name, url: databaseUrl(name) };
}

export async function dropDatabase(name: string): Promise<void> {
  const admin = new Client({ connectionString: databaseUrl('postgres') });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** A FaultProxy in front of this run's Postgres, and the database URL that goes through it. */
export async function proxiedDatabase(): Promise<{ proxy: FaultProxy; url: string }> {
  const database = new URL(loadConfig().database.url);
  const proxy = await FaultProxy.start({ host: database.hostname, port: Number(database.port) });
  database.host = `127.0.0.1:${proxy.port}`;
  return { proxy, url: database.toString() };
}
