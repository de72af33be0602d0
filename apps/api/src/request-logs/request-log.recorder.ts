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
  private pending: RequestLogEntry[] = [];
  /** The batch being published, kept until the broker has it. */
  private unsent: { id: string; entries: RequestLogEntry[] } | undefined;
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
    return this.pending.length + (this.unsent?.entries.length ?? 0);
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
    if (this.pending.length >= batchSize && this.sending === undefined) void this.flush();
  }

  /** Publishes every full or partial batch waiting; stops at the first failure. */
  flush(): Promise<void> {
    // Once a flush, not on the request path.
    this.pendingGauge.set(this.held);
    this.sending ??= this.publishAll().finally(() => (this.sending = undefined));
    return this.sending;
  }

  private async publishAll(): Promise<void> {
    const { batchSize } = this.config.requestLog;
    for (;;) {
      if (this.unsent === undefined) {
        if (this.pending.length === 0) return;
        const entries =
          this.pending.length <= batchSize ? this.pending : this.pending.slice(0, batchSize);
        this.pending = entries === this.pending ? [] : this.pending.slice(batchSize);
        this.unsent = { id: randomUUID(), entries };
      }
      const { id, entries } = this.unsent;
      const batch: RequestLogBatch = { v: 1, entries };
      try {
        await this.publisher.publish(QUEUES.requestLogs, REQUEST_LOG_BATCH, batch, {
          messageId: id,
        });
      } catch {
        // Kept, and tried again at the next flush (the breaker says why, in its metrics and logs).
        return;
      }
      this.unsent = undefined;
    }
  }
}
