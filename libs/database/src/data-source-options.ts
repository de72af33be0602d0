import type { AppConfig } from '@app/config';
import { MIGRATIONS } from '@app/migrations';
import type { DataSourceOptions } from 'typeorm';
import { ENTITIES } from './entities';

/**
 * The one description of the database connection, used by both apps, the migration scripts and
 * the tests. `synchronize` is never on: the schema changes only through migrations/.
 */
export function buildDataSourceOptions(
  config: AppConfig,
  applicationName = 'taskhub',
): DataSourceOptions {
  const { database } = config;
  // Passed to node-postgres: the pool size and timeouts, so no query or connect waits unbounded.
  const extra = {
    max: database.poolSize,
    connectionTimeoutMillis: database.connectTimeoutMs,
    statement_timeout: database.statementTimeoutMs,
    // The server ends a slow statement; this ends the wait for a server that no longer answers
    // (a dead host, a black-holed network), which statement_timeout cannot.
    query_timeout: database.statementTimeoutMs + 1000,
    idle_in_transaction_session_timeout: database.statementTimeoutMs * 2,
    application_name: applicationName,
  };
  const common = {
    type: 'postgres' as const,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    synchronize: false,
    migrationsRun: false,
    logging: false,
    extra,
  };
  if (database.replicaUrls.length === 0) return { ...common, url: database.url };
  return {
    ...common,
    replication: {
      master: { url: database.url },
      slaves: database.replicaUrls.map((url) => ({ url })),
    },
  };
}
