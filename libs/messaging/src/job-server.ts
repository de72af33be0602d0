import { Logger } from '@nestjs/common';
import { RmqContext, RmqOptions, ServerRMQ } from '@nestjs/microservices';
import type { ReadPacket } from '@nestjs/microservices';
import type { ConfirmChannel, ConsumeMessage, Options } from 'amqplib';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { isObservable, lastValueFrom } from 'rxjs';
import { JobQueueTopology, queueDeclarations, retryDelayMs } from './topology';

/** The delivery's attempt (1 for the first), carried by the copies a retry publishes. */
export const ATTEMPT_HEADER = 'x-attempt';

export const JOB_OUTCOMES = ['succeeded', 'retried', 'dead_lettered'] as const;
export type JobOutcome = (typeof JOB_OUTCOMES)[number];

export interface JobServerHooks {
  /** Called once per delivery's outcome: `jobs_processed_total{queue,outcome}`. */
  outcome(queue: string, outcome: JobOutcome): void;
}

/**
 * The RMQ transport of @nestjs/microservices, made safe for jobs. Nest's ServerRMQ, consuming
 * with manual acks, leaves an event unacked for ever when its handler fails (the consumer stalls
 * once prefetch such messages pile up) and closes its channel on shutdown with work in flight.
 * This subclass:
 *
 * - declares the queue's retry and dead-letter queues on every (re)connection, before consuming
 *   (a message dead-lettered to a queue that does not exist is dropped);
 * - acks an event once its handler has finished (its promise or observable), so handlers never
 *   ack;
 * - on failure, republishes the message to the retry queue of its attempt (exponential backoff
 *   with jitter, see topology.ts) with the attempt counted in a header, or after
 *   JOB_MAX_ATTEMPTS to `<queue>.dead` with the error, and only then acks it: a copy is
 *   confirmed by the broker before the original goes, so a crash between the two duplicates a
 *   job, never loses one (consumers are idempotent);
 * - counts a redelivery (the worker died, or lost its channel, with the message unacked) as a
 *   failed attempt without running it again at once: a message that kills the worker is
 *   dead-lettered after the limit instead of killing every worker in turn;
 * - dead-letters what it cannot handle at all: an unknown pattern (Nest rejects it; the queue's
 *   dead-letter arguments route it) or a message that cannot be read;
 * - on close, stops consuming, lets the handlers in flight finish and ack, then closes.
 */
export class JobServer extends ServerRMQ {
  private readonly log = new Logger('JobServer');
  private readonly inFlight = new Set<Promise<void>>();
  /** The channel consuming now (a reconnection makes a new one), to cancel on close. */
  private consuming: ConfirmChannel | undefined;
  private readonly consumerTag: string;

  constructor(
    options: Required<RmqOptions>['options'],
    private readonly topology: JobQueueTopology,
    private readonly label: string,
    private readonly maxAttempts: number,
    private readonly hooks: JobServerHooks,
  ) {
    const consumerTag = `${topology.queue}.${hostname()}.${process.pid}.${randomUUID()}`;
    super({ ...options, consumerTag });
    this.consumerTag = consumerTag;
  }

  override async setupChannel(channel: ConfirmChannel, callback: () => void): Promise<void> {
    for (const { queue, arguments: args } of queueDeclarations(this.topology)) {
      await channel.assertQueue(queue, { durable: true, arguments: args });
    }
    await super.setupChannel(channel, callback);
    this.consuming = channel;
  }

  override async handleMessage(message: ConsumeMessage, channel: ConfirmChannel): Promise<void> {
    try {
      await super.handleMessage(message, channel);
    } catch (error) {
      // Unreadable (the deserializer threw): left unacked it would hold a prefetch slot for ever.
      this.log.error(`${this.label}: a message could not be read: ${String(error)}`);
      channel.nack(message, false, false);
      this.hooks.outcome(this.label, 'dead_lettered');
    }
  }

  override handleEvent(pattern: string, packet: ReadPacket, context: RmqContext): Promise<void> {
    const handler = this.getHandlerByPattern(pattern);
    if (!handler) {
      this.hooks.outcome(this.label, 'dead_lettered');
      return super.handleEvent(pattern, packet, context) as Promise<void>;
    }
    const message = context.getMessage() as ConsumeMessage;
    const channel = context.getChannelRef() as ConfirmChannel;
    const work = (async () => {
      const attempt = Number(message.properties.headers?.[ATTEMPT_HEADER] ?? 1);
      if (message.fields.redelivered) {
        // Its outcome is unknown: it may have killed the last worker that ran it.
        await this.fail(channel, message, attempt, 'redelivered: an earlier run did not finish');
        return;
      }
      try {
        const result: unknown = await handler(packet.data, context);
        if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
      } catch (error) {
        await this.fail(channel, message, attempt, describe(error));
        return;
      }
      channel.ack(message);
      this.hooks.outcome(this.label, 'succeeded');
    })().catch((error: unknown) => {
      // The copy was not confirmed (the broker or the channel failed): back to the queue, to be
      // seen again as a redelivery.
      this.log.warn(`${this.label}: could not settle a job: ${describe(error)}`);
      try {
        channel.nack(message, false, true);
      } catch {
        // The channel is gone: the broker requeues what it had not been acked.
      }
    });
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
    return work;
  }

  /** Stops consuming, waits for the jobs in flight to settle, then closes the connection. */
  override async close(): Promise<void> {
    const consuming = this.consuming;
    this.consuming = undefined;
    await consuming?.cancel(this.consumerTag).catch(() => undefined);
    await Promise.all([...this.inFlight]);
    await super.close();
  }

  private async fail(
    channel: ConfirmChannel,
    message: ConsumeMessage,
    attempt: number,
    reason: string,
  ): Promise<void> {
    const headers = { ...message.properties.headers, 'x-last-error': reason.slice(0, 1000) };
    const properties: Options.Publish = {
      persistent: true,
      contentType: message.properties.contentType as string | undefined,
      messageId: message.properties.messageId as string | undefined,
      timestamp: message.properties.timestamp as number | undefined,
    };
    if (attempt < this.maxAttempts) {
      const expiration = String(retryDelayMs(this.topology, attempt));
      await publish(channel, this.topology.retries[attempt - 1].queue, message.content, {
        ...properties,
        expiration,
        headers: { ...headers, [ATTEMPT_HEADER]: attempt + 1 },
      });
      channel.ack(message);
      this.hooks.outcome(this.label, 'retried');
      return;
    }
    await publish(channel, this.topology.dead, message.content, {
      ...properties,
      headers: {
        ...headers,
        [ATTEMPT_HEADER]: attempt,
        'x-dead-lettered-at': new Date().toISOString(),
      },
    });
    channel.ack(message);
    this.hooks.outcome(this.label, 'dead_lettered');
    this.log.warn(`${this.label}: a job failed ${attempt} times and was dead-lettered: ${reason}`);
  }
}

/** Publishes on the confirm channel; resolves once the broker has the message. */
function publish(
  channel: ConfirmChannel,
  queue: string,
  content: Buffer,
  options: Options.Publish,
): Promise<void> {
  return new Promise((resolve, reject) => {
    channel.sendToQueue(queue, content, options, (error: unknown) =>
      error
        ? reject(new Error(`${queue}: not confirmed by the broker`, { cause: error }))
        : resolve(),
    );
  });
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'object' && error !== null && 'message' in error) {
    return String(error.message);
  }
  return String(error);
}
