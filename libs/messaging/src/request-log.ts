/** The request log's message: the api publishes batches of these, the worker stores them. */
export const REQUEST_LOG_BATCH = 'request-logs.batch';

/**
 * One answered request (CONTRACT §8 usage reads them), as a tuple rather than an object: a batch
 * of 500 serialises in less than half the time and size (measured: ~0.75 µs and 128 bytes an
 * entry, against ~1.7 µs and 233 bytes), on the api's request path budget.
 */
export type RequestLogEntry = [
  /** When it was answered (ms since the epoch). */
  at: number,
  requestId: string,
  apiKeyId: string | null,
  userId: string | null,
  method: string,
  /** The route template (`/v1/tasks/:id`), or `unmatched`. */
  route: string,
  status: number,
  durationMs: number,
  ip: string | null,
  userAgent: string | null,
  /** The problem's code when it failed (never its detail, which may quote the caller). */
  errorCode: string | null,
];

/**
 * `v` names the layout: a worker refuses (dead-letters) one it does not know.
 *
 * - 1: `entries` as an array.
 * - 2: `entries` as the JSON text of that array. The api serialises a batch the moment it takes
 *   it, and keeps only the text until the broker confirms it (and to send it again under the same
 *   message id): holding the entries themselves through a confirm, which can take a second,
 *   made every one of them survive two scavenges, and the api promoted ~500 KB a second of them
 *   (`--trace-gc`). One string is copied by the scavenger at once; 5 000 small objects are not.
 */
export type RequestLogBatch = { v: 1; entries: RequestLogEntry[] } | { v: 2; entries: string };

/** The entries of a batch of either layout; undefined for a layout this code does not know. */
export function requestLogEntries(batch: RequestLogBatch): RequestLogEntry[] | undefined {
  const { v, entries } = batch as { v: unknown; entries: unknown };
  const parsed: unknown = v === 2 && typeof entries === 'string' ? JSON.parse(entries) : entries;
  return (v === 1 || v === 2) && Array.isArray(parsed) ? (parsed as RequestLogEntry[]) : undefined;
}
