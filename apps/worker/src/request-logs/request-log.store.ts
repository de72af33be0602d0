import { AppConfig, InjectConfig } from '@app/config';
import { claimMessage } from '@app/database';
import { type RequestLogBatch, type RequestLogEntry, requestLogEntries } from '@app/messaging';
import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { DataSource } from 'typeorm';

const CONSUMER = 'request-logs';
const DAY_MS = 86_400_000;
/** Partition names: request_logs_pYYYYMMDD, one per UTC day. */
const PARTITION = /^request_logs_p(\d{4})(\d{2})(\d{2})$/;
/** How often the worker drops expired partitions. */
const MAINTENANCE_EVERY_MS = 3_600_000;
/** A concurrent CREATE of the same partition by another worker. */
const ALREADY_THERE = ['42P07', '23505'];

const dayOf = (ms: number): number => Math.floor(ms / DAY_MS) * DAY_MS;
/** A day as the partition functions take it: YYYY-MM-DD (UTC). */
const isoDay = (day: number): string => new Date(day).toISOString().slice(0, 10);

/**
 * The worker's side of the request log: stores each batch once (the message id is claimed in the
 * same transaction as the insert, so a batch delivered twice is stored once), in daily partitions
 * of `request_logs` that it creates before writing to them, and drops the partitions older than
 * REQUEST_LOG_RETENTION_DAYS at start and then hourly. Why partitions of our own rather than
 * pg_partman: that is an extension to install on the server, for two statements. Those two are
 * DDL, which the apps' role may not run: the functions request_logs_create_partition and
 * request_logs_drop_partition (migrations/1795996800000-request-log-partition-functions.ts) run
 * them with the rights of the role that migrates.
 */
@Injectable()
export class RequestLogStore implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('RequestLogs');
  /** Days whose partition is known to exist. */
  private readonly partitions = new Set<number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    @InjectConfig() private readonly config: AppConfig,
    private readonly dataSource: DataSource,
  ) {}

  onApplicationBootstrap(): void {
    const maintain = () =>
      this.maintain().catch((error: unknown) =>
        this.logger.warn(`maintenance failed, tried again in an hour: ${String(error)}`),
      );
    void maintain();
    this.timer = setInterval(() => void maintain(), MAINTENANCE_EVERY_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** Stores a batch once per message id; returns the number of rows written (0 for a repeat). */
  async store(messageId: string, batch: RequestLogBatch): Promise<number> {
    const received = requestLogEntries(batch);
    if (received === undefined) {
      throw new Error(`a request log batch of an unknown layout (v ${String(batch.v)})`);
    }
    const oldest = this.oldestKeptDay();
    const entries = received.filter(([at]) => at >= oldest);
    await this.ensurePartitions(entries.map(([at]) => dayOf(at)));
    return this.dataSource.transaction(async (manager) => {
      if (!(await claimMessage(manager, CONSUMER, messageId))) return 0;
      if (entries.length === 0) return 0;
      await manager.query(
        `INSERT INTO request_logs (created_at, request_id, api_key_id, user_id, method, route,
           status_code, duration_ms, ip, user_agent, error_code)
         SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::uuid[], $4::uuid[], $5::text[],
           $6::text[], $7::smallint[], $8::real[], $9::inet[], $10::text[], $11::text[])`,
        columns(entries),
      );
      return entries.length;
    });
  }

  /** Drops the partitions past retention, and forgets old processed messages. */
  async maintain(now = Date.now()): Promise<string[]> {
    const oldest = this.oldestKeptDay(now);
    const rows: Array<{ name: string }> = await this.dataSource.query(
      `SELECT c.relname AS name FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
       WHERE p.relname = 'request_logs'`,
    );
    const dropped: string[] = [];
    for (const { name } of rows) {
      const match = PARTITION.exec(name);
      if (!match) continue;
      const day = Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
      if (day >= oldest) continue;
      const [{ gone }] = await this.dataSource.query<[{ gone: boolean }]>(
        'SELECT request_logs_drop_partition($1::date) AS gone',
        [isoDay(day)],
      );
      this.partitions.delete(day);
      if (gone) dropped.push(name);
    }
    if (dropped.length > 0) this.logger.log(`dropped expired partitions: ${dropped.join(', ')}`);
    return dropped;
  }

  private oldestKeptDay(now = Date.now()): number {
    return dayOf(now) - this.config.requestLog.retentionDays * DAY_MS;
  }

  private async ensurePartitions(days: number[]): Promise<void> {
    for (const day of new Set(days)) {
      if (this.partitions.has(day)) continue;
      try {
        await this.dataSource.query('SELECT request_logs_create_partition($1::date)', [
          isoDay(day),
        ]);
      } catch (error) {
        if (!ALREADY_THERE.includes((error as { code?: string }).code ?? '')) throw error;
      }
      this.partitions.add(day);
    }
  }
}

/** The batch as one array per column, for a single INSERT ... SELECT FROM unnest(...). */
function columns(entries: RequestLogEntry[]): unknown[][] {
  const [, ...rest] = Array.from({ length: 11 }, (_, column) => entries.map((e) => e[column]));
  return [entries.map(([at]) => new Date(at).toISOString()), ...rest];
}
