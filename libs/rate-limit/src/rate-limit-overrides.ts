import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

/** How often every instance re-reads the overrides: a change applies everywhere within it. */
export const OVERRIDES_RELOAD_MS = 500;

interface Override {
  requestsPerMinute: number;
  /** ms; null: never. */
  expiresAt: number | null;
}

/**
 * The administrators' per-client limits (rate_limit_configs), held in memory and read again from
 * the database every OVERRIDES_RELOAD_MS, so a change reaches every instance within a second
 * with no message bus. Overrides are few (they are set by hand), so reading them all is cheap.
 * While the database is unreachable the last set read stays in force; an expired override stops
 * applying at its expiry, reload or not.
 */
@Injectable()
export class RateLimitOverrides implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RateLimitOverrides.name);
  private overrides = new Map<string, Override>();
  private timer: NodeJS.Timeout | undefined;
  private failing = false;
  /** The reload in progress: reloads run one after another, never side by side. */
  private reloading: Promise<void> = Promise.resolve();
  private queued = 0;

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async onModuleInit(): Promise<void> {
    await this.reload();
    // A timed reload is skipped while one is queued: a slow database does not pile them up.
    this.timer = setInterval(() => {
      if (this.queued === 0) void this.reload();
    }, OVERRIDES_RELOAD_MS).unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** The override for a client identifier, if one is in force. */
  limitFor(identifier: string): number | undefined {
    const override = this.overrides.get(identifier);
    if (!override) return undefined;
    if (override.expiresAt !== null && Date.now() >= override.expiresAt) return undefined;
    return override.requestsPerMinute;
  }

  /**
   * Reads the overrides again. Queued behind a reload in progress, so that one that started
   * before a write committed cannot finish after the write's own reload and put the old set back.
   */
  reload(): Promise<void> {
    this.queued += 1;
    this.reloading = this.reloading.then(() => this.load()).finally(() => (this.queued -= 1));
    return this.reloading;
  }

  private async load(): Promise<void> {
    try {
      const rows = await this.dataSource.query<
        { identifier: string; requests_per_minute: number; expires_at: Date | null }[]
      >(
        `SELECT identifier, requests_per_minute, expires_at FROM rate_limit_configs
          WHERE expires_at IS NULL OR expires_at > now()`,
      );
      this.overrides = new Map(
        rows.map((row) => [
          row.identifier,
          {
            requestsPerMinute: row.requests_per_minute,
            expiresAt: row.expires_at?.getTime() ?? null,
          },
        ]),
      );
      if (this.failing) this.logger.log('Rate-limit overrides are read again');
      this.failing = false;
    } catch (error) {
      if (!this.failing) {
        this.logger.warn(
          `Could not read rate-limit overrides; keeping the last ones: ${String(error)}`,
        );
      }
      this.failing = true;
    }
  }
}
