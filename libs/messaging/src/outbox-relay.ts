import { AppConfig, InjectConfig } from '@app/config';
import {
  BeforeApplicationShutdown,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Gauge } from 'prom-client';
import { DataSource } from 'typeorm';
import { Publisher } from './publisher';
import type { QueueName } from './topology';

/** How often `outbox_pending` is counted, and published rows are cleared away. */
const COUNT_EVERY_MS = 1000;
const CLEAN_EVERY_MS = 3_600_000;

interface Row {
  id: string;
  message_id: string;
  queue: QueueName;
  pattern: string;
  payload: unknown;
}

/**
 * Publishes the outbox (see outbox.ts): takes up to OUTBOX_BATCH_SIZE pending rows, oldest
 * first, with `FOR UPDATE SKIP LOCKED` (so several workers relay side by side, each row taken by
 * one), publishes them with confirms through the `rabbitmq` breaker, marks those the broker
 * took, and commits. A row whose publish failed stays pending for the next pass; a worker that
 * dies after publishing and before committing leaves its rows to be published again, so a
 * message can arrive twice (consumers claim its message id), never not at all. Order is the
 * outbox's order within a pass, not guaranteed across failures.
 *
 * It polls every OUTBOX_POLL_MS while there is nothing to do, and goes straight on while it
 * finds full batches. `outbox_pending` counts the rows waiting; published rows are deleted
 * after a day.
 */
@Injectable()
export class OutboxRelay implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('OutboxRelay');
  private running: Promise<void> | undefined;
  private stopping = false;

  constructor(
    @InjectConfig() private readonly config: AppConfig,
    private readonly dataSource: DataSource,
    private readonly publisher: Publisher,
    @InjectMetric('outbox_pending') private readonly pending: Gauge<string>,
  ) {}

  onApplicationBootstrap(): void {
    this.running = this.loop();
  }

  /** Lets the pass in progress finish (its rows marked), then stops. */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    await this.running;
  }

  /** One pass: publishes up to a batch of pending rows; returns how many it published. */
  relayOnce(): Promise<number> {
    return this.dataSource.transaction(async (manager) => {
      const rows = await manager.query<Row[]>(
        `SELECT id, message_id, queue, pattern, payload FROM outbox
          WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [this.config.outbox.batchSize],
      );
      if (rows.length === 0) return 0;
      const outcomes = await Promise.allSettled(
        rows.map((row) =>
          this.publisher.publish(row.queue, row.pattern, row.payload, {
            messageId: row.message_id,
          }),
        ),
      );
      const published = rows.filter((_, n) => outcomes[n].status === 'fulfilled').map((r) => r.id);
      if (published.length > 0) {
        await manager.query(`UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])`, [
          published,
        ]);
      }
      return published.length;
    });
  }

  /** Rows waiting to be published. */
  async countPending(): Promise<number> {
    const [{ count }] = await this.dataSource.query<Array<{ count: number }>>(
      `SELECT count(*)::int AS count FROM outbox WHERE published_at IS NULL`,
    );
    this.pending.set(count);
    return count;
  }

  private async loop(): Promise<void> {
    let countedAt = 0;
    let cleanedAt = 0;
    while (!this.stopping) {
      let published = 0;
      try {
        published = await this.relayOnce();
        const now = Date.now();
        if (now - countedAt >= COUNT_EVERY_MS) {
          countedAt = now;
          await this.countPending();
        }
        if (now - cleanedAt >= CLEAN_EVERY_MS) {
          cleanedAt = now;
          await this.dataSource.query(
            `DELETE FROM outbox WHERE published_at < now() - interval '1 day'`,
          );
        }
      } catch (error) {
        // Postgres unreachable (RabbitMQ's failures leave rows pending, they do not throw).
        this.logger.warn(`outbox relay pass failed: ${String(error)}`);
      }
      if (published < this.config.outbox.batchSize && !this.stopping) {
        await sleep(this.config.outbox.pollMs);
      }
    }
  }
}
