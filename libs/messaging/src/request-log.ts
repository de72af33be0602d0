/** The request log's message: the api publishes batches of these, the worker stores them. */
export const REQUEST_LOG_BATCH = 'request-logs.batch';

/** One answered request (CONTRACT §8 usage reads them). */
export interface RequestLogEntry {
  /** When it was answered (ms since the epoch). */
  at: number;
  requestId: string;
  apiKeyId: string | null;
  userId: string | null;
  method: string;
  /** The route template (`/v1/tasks/:id`), or `unmatched`. */
  route: string;
  status: number;
  durationMs: number;
  ip: string | null;
  userAgent: string | null;
  /** The problem's code when it failed (never its detail, which may quote the caller). */
  errorCode: string | null;
}

export interface RequestLogBatch {
  entries: RequestLogEntry[];
}
