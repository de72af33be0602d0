import { ApiException } from '@app/http';
import { Injectable, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Client, Pool, PoolClient } from 'pg';
import { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { Breakers } from './breakers';

const GUARDED = Symbol('guarded by the postgres breaker');
/** When the connection's session must be over (ms): see PostgresBreaker. */
const DEADLINE = Symbol('session deadline');
type GuardedClient = PoolClient & { [GUARDED]?: true; [DEADLINE]?: number };
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
 *
 * One bound covers a whole session with the database: from asking the pool for a connection to
 * handing it back, the wait for it, every query on it (a transaction's BEGIN to COMMIT) and a
 * ROLLBACK all fit in the breaker's timeout (BREAKER_POSTGRES_TIMEOUT_MS, by default
 * DATABASE_STATEMENT_TIMEOUT_MS). Each query may take what is left of it; one that runs out drops
 * the connection, so the transaction ends there (the server rolls it back when it sees the
 * connection gone) and the ROLLBACK that follows fails at once instead of waiting again.
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
      this.guardPoolQuery(pool);
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
        dropConnection(this);
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
   * waits on the pool, and a failure to connect is a 503 like a failed query. The wait for a free
   * connection is bounded by the breaker's timeout too: with the database hung, the pool's
   * connections stay busy until their own query_timeout, and the requests queued behind them
   * would otherwise wait out DATABASE_CONNECT_TIMEOUT_MS. A connection handed out after the wait
   * was given up goes straight back to the pool.
   */
  private guardConnect(pool: Pool): void {
    const connect = pool.connect.bind(pool) as (callback: ConnectCallback) => void;
    const waitMs = this.breakers.timeoutMs('postgres');
    const connected = (): Promise<[PoolClient, Done]> =>
      new Promise((resolve, reject) => {
        const refusal = this.breakers.refusal('postgres');
        if (refusal) return reject(refusal);
        const deadline = Date.now() + waitMs;
        let waiting = true;
        const timer = setTimeout(() => {
          waiting = false;
          const error = new Error(`no connection was free within ${waitMs} ms`);
          reject(this.breakers.unreachable('postgres', error));
        }, waitMs);
        connect((error, client, done) => {
          if (!waiting) {
            if (client) done();
            return;
          }
          waiting = false;
          clearTimeout(timer);
          if (error || !client) {
            reject(
              error instanceof ApiException
                ? error
                : this.breakers.unreachable('postgres', error ?? new Error('no connection')),
            );
          } else {
            (client as GuardedClient)[DEADLINE] = deadline;
            resolve([client, done]);
          }
        });
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

  /**
   * `pool.query` (the one-statement reads and writes) listens to its client's 'error' event and
   * fails with what the socket reports, before the client's own query can: a connection reset
   * under the statement would reach the caller as a bare ECONNRESET, a 500. It is the same 503
   * as under a query on a connection of one's own.
   */
  private guardPoolQuery(pool: Pool): void {
    const query = pool.query.bind(pool) as Query;
    const guarded: Query = (...args) => {
      const callback =
        typeof args[args.length - 1] === 'function' ? (args.pop() as Callback) : undefined;
      const result = (query(...args) as Promise<unknown>).catch((error: unknown) => {
        throw lostConnection(error) ? this.breakers.unreachable('postgres', error) : error;
      });
      return answer(result, callback);
    };
    pool.query = guarded as Pool['query'];
  }

  private guard(client: GuardedClient): void {
    if (client[GUARDED]) return;
    client[GUARDED] = true;
    const query = client.query.bind(client) as Query;
    const guarded: Query = (...args) => {
      const [first] = args;
      const text = typeof first === 'string' ? first : (first as { text?: unknown } | null)?.text;
      const submittable = typeof (first as { submit?: unknown } | null)?.submit === 'function';
      if (submittable) return query(...args);
      if (typeof text === 'string' && /^\s*ROLLBACK\b/i.test(text)) {
        return this.rollback(client, query, args);
      }
      const callback =
        typeof args[args.length - 1] === 'function' ? (args.pop() as Callback) : undefined;
      const result = this.breakers.run('postgres', () => this.inSession(client, query, args));
      return answer(result, callback);
    };
    client.query = guarded as PoolClient['query'];
  }

  /** Runs a query in what is left of the session's time; past it, the connection is dropped. */
  private inSession(client: GuardedClient, query: Query, args: unknown[]): Promise<unknown> {
    const left = (client[DEADLINE] ?? Infinity) - Date.now();
    if (left <= 0) {
      dropConnection(client);
      return Promise.reject(this.breakers.timedOut('postgres'));
    }
    const run = (): Promise<unknown> =>
      (query(...args) as Promise<unknown>).catch((error: unknown) => {
        throw lostConnection(error) ? this.breakers.unreachable('postgres', error) : error;
      });
    if (left === Infinity) return run();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        dropConnection(client);
        reject(this.breakers.timedOut('postgres'));
      }, left);
      run()
        .finally(() => clearTimeout(timer))
        .then(resolve, reject);
    });
  }

  /**
   * A ROLLBACK is never refused, but it is not waited on past the session's deadline either:
   * then the connection is dropped. The pending ROLLBACK fails at once, the pool discards the
   * connection rather than take it back inside a transaction, and the server rolls the
   * transaction back when it sees the connection gone.
   */
  private rollback(client: GuardedClient, query: Query, args: unknown[]): unknown {
    const left =
      (client[DEADLINE] ?? Date.now() + this.breakers.timeoutMs('postgres')) - Date.now();
    const timer = setTimeout(() => dropConnection(client), Math.max(0, left));
    const last = args[args.length - 1];
    if (typeof last === 'function') {
      const callback = last as Callback;
      args[args.length - 1] = (error: unknown, result?: unknown) => {
        clearTimeout(timer);
        callback(error, result);
      };
      return query(...args);
    }
    const result = query(...args) as Promise<unknown>;
    const settled = () => clearTimeout(timer);
    result.then(settled, settled);
    return result;
  }
}

/** A query's outcome as pg gives it: to the callback when there is one, else as the promise. */
function answer(result: Promise<unknown>, callback: Callback | undefined): unknown {
  if (!callback) return result;
  result.then(
    (value) => callback(null, value),
    (error: unknown) => callback(error),
  );
  return undefined;
}

/**
 * The connection failed under the statement (reset, closed by the server, a restart): the
 * database's trouble, a 503 with Retry-After, not a bug's 500. pg reports these without a
 * SQLSTATE: a socket error's code (ECONNRESET, EPIPE, ...) or a message of its own; every error
 * the server itself sends has a five-character SQLSTATE.
 */
function lostConnection(error: unknown): error is Error {
  // Not `instanceof Error`: Node's own socket errors come from another realm under Jest's VM.
  if (typeof error !== 'object' || error === null || error instanceof ApiException) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === 'string') return /^E[A-Z]+$/.test(code);
  return typeof message === 'string' && /\bconnection\b|not queryable/i.test(message);
}

/** Closes the client's socket: what it has in flight fails, and it never serves again. */
function dropConnection(client: Client | PoolClient): void {
  (
    client as unknown as { connection?: { stream?: { destroy(): void } } }
  ).connection?.stream?.destroy();
}
