import type { Principal } from '@app/auth';
import { AppConfig, InjectConfig } from '@app/config';
import { problemCodeOf } from '@app/http';
import {
  Publisher,
  QUEUES,
  REQUEST_LOG_BATCH,
  RequestLogBatch,
  RequestLogEntry,
} from '@app/messaging';
import type { RequestRecorder } from '@app/observability';
import { BeforeApplicationShutdown, Injectable, OnModuleInit } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { Counter, Gauge } from 'prom-client';

const USER_AGENT_MAX = 500;

/**
 * The api's side of the request log: each answered request (but probes and scrapes) becomes an
 * entry in memory, published to the worker's `request-logs` queue in batches of
 * REQUEST_LOG_BATCH_SIZE, or every REQUEST_LOG_FLUSH_MS, off the request path. Bounded: past
 * REQUEST_LOG_BUFFER_MAX entries waiting (RabbitMQ down or slow), new entries are dropped and
 * counted in `request_log_dropped_total`, so an outage costs log entries, never memory or
 * requests. A batch that failed to publish is tried again with the same message id: if the
 * failed attempt reached the broker after all, the worker stores the batch once.
 */
@Injectable()
export class RequestLogRecorder
  implements RequestRecorder, OnModuleInit, BeforeApplicationShutdown
{
  /** Entries not in a batch yet (fewer than REQUEST_LOG_BATCH_SIZE). */
  private pending: RequestLogEntry[] = [];
  /**
   * Batches waiting for the broker, oldest first, each serialised the moment it is made (when
   * full, or at a flush) and kept as its text until confirmed: entries that waited through a
   * confirm survived two scavenges and were promoted (see RequestLogBatch's layout 2). A batch
   * that failed keeps its message id, so a retry is stored once.
   */
  private unsent: Array<{ id: string; count: number; text: string }> = [];
  private unsentCount = 0;
  private sending: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    @InjectConfig() private readonly config: AppConfig,
    private readonly publisher: Publisher,
    @InjectMetric('request_log_dropped_total') private readonly dropped: Counter<string>,
    @InjectMetric('request_log_pending') private readonly pendingGauge: Gauge<string>,
  ) {}

  onModuleInit(): void {
    if (!this.config.requestLog.enabled) return;
    this.timer = setInterval(() => void this.flush(), this.config.requestLog.flushMs);
    this.timer.unref();
  }

  /** Publishes what is waiting before the publisher closes (bounded by its breaker's timeout). */
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  private get held(): number {
    return this.pending.length + this.unsentCount;
  }

  record(request: FastifyRequest, reply: FastifyReply, route: string, elapsedMs: number): void {
    const { batchSize, bufferMax } = this.config.requestLog;
    if (this.held >= bufferMax) {
      this.dropped.inc();
      return;
    }
    const principal = (request as FastifyRequest & { user?: Principal }).user;
    const userAgent = request.headers['user-agent'];
    this.pending.push([
      Date.now(),
      String(request.id),
      principal?.kind === 'apiKey' ? principal.apiKeyId : null,
      principal?.userId ?? null,
      request.method,
      route,
      reply.statusCode,
      Math.round(elapsedMs * 1000) / 1000,
      request.ip ?? null,
      userAgent === undefined ? null : userAgent.slice(0, USER_AGENT_MAX),
      problemCodeOf(request) ?? null,
    ]);
    if (this.pending.length >= batchSize) {
      this.seal();
      if (this.sending === undefined) void this.flush();
    }
  }

  /** Publishes every full or partial batch waiting; stops at the first failure. */
  flush(): Promise<void> {
    // Once a flush, not on the request path.
    this.pendingGauge.set(this.held);
    this.sending ??= this.publishAll().finally(() => (this.sending = undefined));
    return this.sending;
  }

  /** Makes the pending entries a batch, serialised, behind the others waiting. */
  private seal(): void {
    if (this.pending.length === 0) return;
    const entries = this.pending;
    this.pending = [];
    this.unsent.push({ id: randomUUID(), count: entries.length, text: JSON.stringify(entries) });
    this.unsentCount += entries.length;
  }

  private async publishAll(): Promise<void> {
    // A partial batch only when none waits: while the broker is away, entries wait as full
    // batches, not as one small batch a flush.
    if (this.unsent.length === 0) this.seal();
    while (this.unsent.length > 0) {
      const { id, count, text } = this.unsent[0];
      const batch: RequestLogBatch = { v: 2, entries: text };
      try {
        await this.publisher.publish(QUEUES.requestLogs, REQUEST_LOG_BATCH, batch, {
          messageId: id,
        });
      } catch {
        // Kept, and tried again at the next flush (the breaker says why, in its metrics and logs).
        return;
      }
      this.unsent.shift();
      this.unsentCount -= count;
    }
  }
}
