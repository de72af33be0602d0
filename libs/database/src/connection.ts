import type { PoolClient } from 'pg';
import type { EntityManager } from 'typeorm';
import type { PostgresQueryRunner } from 'typeorm/driver/postgres/PostgresQueryRunner';

/**
 * The pg connection under a TypeORM transaction's EntityManager. The hot statements of a write
 * run on it directly, as named prepared statements, inside the same transaction: TypeORM's
 * `query()` and `save()` cost more CPU than the statements themselves (the benchmark's profile of
 * `POST /v1/tasks`). The connection's `query` is the one the postgres breaker guards.
 */
export function connectionOf(manager: EntityManager): PoolClient {
  const runner = manager.queryRunner as PostgresQueryRunner | undefined;
  // Protected in TypeORM's types; `connect()` returns the same connection, a tick later.
  const connection = (runner as { databaseConnection?: PoolClient } | undefined)
    ?.databaseConnection;
  if (!runner?.isTransactionActive || !connection) {
    throw new Error('connectionOf needs the manager of a transaction with its connection');
  }
  return connection;
}
