import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

/** A key's `last_used_at` moves at most this often. */
export const LAST_USED_RESOLUTION_MS = 60_000;
const FLUSH_EVERY_MS = 5_000;

/**
 * Records when API keys are used, off the request path: a use is noted in memory (at most once a
 * minute per key and instance), and the notes are written in one UPDATE every few seconds and at
 * shutdown. The UPDATE only moves a `last_used_at` that is a minute old or more, so however many
 * instances use a key, its row is written at most once a minute.
 */
@Injectable()
export class ApiKeyUsage implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(ApiKeyUsage.name);
  /** When this instance last noted each key's use. */
  private readonly noted = new Map<string, number>();
  /** Uses not yet written: key id → time of use. */
  private pending = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  onModuleInit(): void {
    this.timer = setInterval(() => void this.flush(), FLUSH_EVERY_MS).unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  /** Notes a use of the key at `now` (ms); cheap enough for every request. */
  record(apiKeyId: string, now: number): void {
    const last = this.noted.get(apiKeyId);
    if (last !== undefined && now - last < LAST_USED_RESOLUTION_MS) return;
    this.noted.set(apiKeyId, now);
    this.pending.set(apiKeyId, now);
  }

  /** Writes the uses noted so far. A failed write keeps them for the next flush. */
  async flush(): Promise<void> {
    const now = Date.now();
    for (const [id, at] of this.noted)
      if (now - at >= LAST_USED_RESOLUTION_MS) this.noted.delete(id);
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      await this.dataSource.query(
        `UPDATE api_keys k SET last_used_at = u.used_at
           FROM unnest($1::uuid[], $2::timestamptz[]) AS u (id, used_at)
          WHERE k.id = u.id
            AND (k.last_used_at IS NULL OR k.last_used_at <= u.used_at - interval '1 minute')`,
        [[...batch.keys()], [...batch.values()].map((at) => new Date(at))],
      );
    } catch (error) {
      for (const [id, at] of batch) {
        if (!this.pending.has(id)) this.pending.set(id, at);
      }
      this.logger.warn(`Could not record API key use (kept for the next try): ${String(error)}`);
    }
  }
}
