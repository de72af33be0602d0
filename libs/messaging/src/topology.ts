import type { AppConfig } from '@app/config';

/**
 * Queues the worker consumes. Here, with the topology, and with nothing but types imported: the
 * tests' global teardown, which Jest loads without the @app/* mapping, deletes them by name.
 */
export const QUEUES = {
  jobs: 'jobs',
  exports: 'exports',
  requestLogs: 'request-logs',
  taskEvents: 'task-events',
  webhookDeliveries: 'webhook-deliveries',
} as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/** The broker-side name: RABBITMQ_QUEUE_PREFIX keeps test runs and environments apart. */
export const queueName = (config: AppConfig, queue: QueueName): string =>
  `${config.rabbitmq.queuePrefix}${queue}`;

/**
 * The queues of one job queue on the broker (all durable, on the default exchange):
 *
 * - `<queue>`: what the worker consumes. A message it rejects (Nest's RMQ server rejects one whose
 *   pattern has no handler) is dead-lettered to `<queue>.dead`.
 * - `<queue>.retry.<ms>ms`, one per backoff delay: nobody consumes them; a message waits there
 *   until its expiration (or the queue's TTL, which bounds it), then goes back to `<queue>`. One
 *   queue per delay, because RabbitMQ expires messages only at a queue's head: a long delay in a
 *   shared queue would hold the short ones behind it. The delay is in the name, so changing the
 *   retry settings declares new queues instead of clashing with the old ones' arguments.
 * - `<queue>.dead`: jobs that failed maxAttempts times, or that could not be handled at all,
 *   with why in their headers, for an operator to inspect or shovel back.
 */
export interface JobQueueTopology {
  queue: string;
  dead: string;
  /** retries[n - 1]: where a job waits after its n-th failed attempt. */
  retries: Array<{ queue: string; delayMs: number }>;
}

export function jobQueueTopology(config: AppConfig, queue: string): JobQueueTopology {
  const { maxAttempts, retryBaseMs, retryMaxMs } = config.jobs;
  const delays = Array.from({ length: maxAttempts - 1 }, (_, n) =>
    Math.min(retryMaxMs, retryBaseMs * 2 ** n),
  );
  return {
    queue,
    dead: `${queue}.dead`,
    retries: delays.map((delayMs) => ({ queue: `${queue}.retry.${delayMs}ms`, delayMs })),
  };
}

/** The main queue's arguments: the worker, the api's publisher and tests must declare it alike. */
export function mainQueueArguments(topology: JobQueueTopology): Record<string, string> {
  return { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': topology.dead };
}

/** What to declare, queue by queue, for the topology to exist (the main queue included). */
export function queueDeclarations(
  topology: JobQueueTopology,
): Array<{ queue: string; arguments: Record<string, string | number> }> {
  return [
    { queue: topology.queue, arguments: mainQueueArguments(topology) },
    { queue: topology.dead, arguments: {} },
    // Retry queues may share a delay (capped delays): declared once each.
    ...[...new Map(topology.retries.map((r) => [r.queue, r])).values()].map((retry) => ({
      queue: retry.queue,
      arguments: {
        'x-message-ttl': retry.delayMs,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': topology.queue,
      },
    })),
  ];
}

/**
 * The wait after the n-th failed attempt: the tier's delay less a random part of up to half
 * ("equal jitter"), so jobs that failed together do not all come back at once.
 */
export function retryDelayMs(
  topology: JobQueueTopology,
  attempt: number,
  random = Math.random(),
): number {
  const { delayMs } = topology.retries[attempt - 1];
  return Math.max(1, Math.round(delayMs * (1 - random / 2)));
}

/**
 * Every queue the apps declare under `config`'s prefix and job settings: each job queue with its
 * dead-letter and retry queues. What a test run, or the benchmark, deletes when it is done.
 */
export function declaredQueueNames(config: AppConfig): string[] {
  return Object.values(QUEUES).flatMap((queue) =>
    queueDeclarations(jobQueueTopology(config, queueName(config, queue))).map(
      ({ queue: name }) => name,
    ),
  );
}
