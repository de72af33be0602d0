import { ApiException } from '@app/http';
import { Injectable, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Client, Pool, PoolClient } from 'pg';
import { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { Breakers } from './breakers';

const GUARDED = Symbol('guarded by the postgres breaker');
type Query = (...args: unknown[]) => unknown;
type Callback = (error: unknown, result?: unknown) => void;
type Done = (release?: unknown) => void;
type ConnectCallback = (
  error: Error | undefined,
  client: PoolClient | undefined,
  done: Done,
) => void;

/**
 * Puts every query of the api's pools (the primary and any replica) through the postgres breaker,
 * at the one place all of them pass: TypeORM's repositories and transactions, the prepared hot
 * read, the health check. pg has no hook for this, so each client's `query` is wrapped when the
 * pool hands the client out. ROLLBACK is never refused: a transaction must always be able to end,
 * or its connection would go back to the pool still inside it. Streams (Submittables) pass as
 * they are.
 */
@Injectable()
export class PostgresBreaker implements OnModuleInit {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly breakers: Breakers,
  ) {}

  onModuleInit(): void {
    const driver = this.dataSource.driver as PostgresDriver;
    for (const pool of [driver.master as Pool, ...(driver.slaves as Pool[])]) {
      this.guardNewConnections(pool);
      this.guardConnect(pool);
      pool.on('acquire', (client) => this.guard(client));
    }
  }

  /**
   * Opening a new connection runs through the breaker: a database that accepts no connections
   * opens it, and an open breaker refuses new connections at once. (pg-pool builds each client
   * with `new pool.Client`, so a subclass is where a connection attempt can be seen.) An attempt
   * the breaker gave up on is torn down, or it would connect later outside the pool.
   */
  private guardNewConnections(pool: Pool): void {
    const breakers = this.breakers;
    const holder = pool as unknown as { Client: typeof Client };
    // Called with the client as `this` below.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const connect = holder.Client.prototype.connect as (
      this: Client,
      callback: (error: Error | null) => void,
    ) => void;
    class GuardedClient extends holder.Client {}
    GuardedClient.prototype.connect = function (
      this: Client,
      callback?: (error: Error | null) => void,
    ): Promise<void> | undefined {
      const attempt = breakers.run(
        'postgres',
        () =>
          new Promise<void>((resolve, reject) =>
            connect.call(this, (error) => (error ? reject(error) : resolve())),
          ),
      );
      const settled = attempt.catch((error: unknown) => {
        const socket = (this as unknown as { connection?: { stream?: { destroy(): void } } })
          .connection?.stream;
        socket?.destroy();
        throw error;
      });
      if (!callback) return settled;
      settled.then(
        () => callback(null),
        (error: Error) => callback(error),
      );
      return undefined;
    } as Client['connect'];
    holder.Client = GuardedClient;
  }

  /**
   * Connecting does not run through the breaker (handing out an idle connection says nothing of
   * the database, and would close a half-open breaker), but an open breaker refuses it before it
   * waits on the pool, and a failure to connect is a 503 like a failed query.
   */
  private guardConnect(pool: Pool): void {
    const connect = pool.connect.bind(pool) as (callback: ConnectCallback) => void;
    const connected = (): Promise<[PoolClient, Done]> =>
      new Promise((resolve, reject) => {
        const refusal = this.breakers.refusal('postgres');
        if (refusal) return reject(refusal);
        connect((error, client, done) =>
          error || !client
            ? reject(
                error instanceof ApiException
                  ? error
                  : this.breakers.unreachable('postgres', error ?? new Error('no connection')),
              )
            : resolve([client, done]),
        );
      });
    const guarded = (callback?: ConnectCallback): Promise<PoolClient> | undefined => {
      if (!callback) return connected().then(([client]) => client);
      connected().then(
        ([client, done]) => callback(undefined, client, done),
        (error: Error) => callback(error, undefined, () => undefined),
      );
      return undefined;
    };
    pool.connect = guarded as Pool['connect'];
  }

  private guard(client: PoolClient & { [GUARDED]?: true }): void {
    if (client[GUARDED]) return;
    client[GUARDED] = true;
    const query = client.query.bind(client) as Query;
    const guarded: Query = (...args) => {
      const [first] = args;
      const text = typeof first === 'string' ? first : (first as { text?: unknown } | null)?.text;
      const submittable = typeof (first as { submit?: unknown } | null)?.submit === 'function';
      if (submittable || (typeof text === 'string' && /^\s*ROLLBACK\b/i.test(text))) {
        return query(...args);
      }
      const callback =
        typeof args[args.length - 1] === 'function' ? (args.pop() as Callback) : undefined;
      const result = this.breakers.run('postgres', () => query(...args) as Promise<unknown>);
      if (!callback) return result;
      result.then(
        (value) => callback(null, value),
        (error: unknown) => callback(error),
      );
      return undefined;
    };
    client.query = guarded as PoolClient['query'];
  }
}
