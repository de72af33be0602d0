import { IDEMPOTENCY_KEY_TTL_HOURS } from '@app/database';
import { ApiException } from '@app/http';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { createHash } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

export interface IdempotencyRequest {
  /** The Idempotency-Key header, or undefined when the client sent none. */
  key: string | undefined;
  /** What identifies the request: method, route template and body as received. */
  method: string;
  route: string;
  body: unknown;
}

export interface IdempotentResult<T> {
  body: T;
  replayed: boolean;
}

/**
 * Idempotency-Key on creates (the IETF httpapi draft): the first request's response is kept 24 h
 * (IDEMPOTENCY_KEY_TTL_HOURS; the worker deletes expired keys hourly)
 * and replayed for a retry with the same key and body; the same key with another body is 422.
 *
 * The key row and the work commit in one transaction. A concurrent retry blocks on the key's
 * unique index until the first commits, then replays it; if the first fails, nothing is kept
 * and the retry does the work. So a key never creates twice, and never replays a failure.
 */
@Injectable()
export class IdempotencyService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * As `run`, for work that is one statement, atomic by itself: without a key it runs outside a
   * transaction (`manager` undefined), which saves the BEGIN and COMMIT round trips; with one,
   * inside the key's transaction as always.
   */
  runStatement<T>(
    userId: string,
    request: IdempotencyRequest,
    work: (manager: EntityManager | undefined) => Promise<T>,
  ): Promise<IdempotentResult<T>> {
    if (request.key === undefined) {
      return work(undefined).then((body) => ({ body, replayed: false }));
    }
    return this.run(userId, request, work);
  }

  /**
   * `kept` is what a replay answers, when it must differ from the first response: a secret shown
   * once (an API key) is left out of it, so it is never stored.
   */
  async run<T>(
    userId: string,
    request: IdempotencyRequest,
    work: (manager: EntityManager) => Promise<T>,
    kept: (body: T) => T = (body) => body,
  ): Promise<IdempotentResult<T>> {
    const { key } = request;
    if (key === undefined) {
      return { body: await this.dataSource.transaction(work), replayed: false };
    }
    if (!KEY_PATTERN.test(key)) {
      throw new ApiException(
        'VALIDATION_FAILED',
        'Idempotency-Key must be 1 to 255 visible ASCII characters.',
        [{ field: 'Idempotency-Key', message: 'must be 1 to 255 visible ASCII characters' }],
      );
    }
    const requestHash = createHash('sha256')
      .update(JSON.stringify([request.method, request.route, request.body ?? null]))
      .digest();
    return this.dataSource.transaction(async (manager) => {
      await manager.query(
        `DELETE FROM idempotency_keys
          WHERE user_id = $1 AND key = $2 AND created_at < now() - make_interval(hours => $3)`,
        [userId, key, IDEMPOTENCY_KEY_TTL_HOURS],
      );
      const claimed = await manager.query<unknown[]>(
        `INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING RETURNING key`,
        [userId, key, requestHash],
      );
      if (claimed.length === 0) {
        const [first] = await manager.query<{ request_hash: Buffer; response_body: T }[]>(
          `SELECT request_hash, response_body FROM idempotency_keys WHERE user_id = $1 AND key = $2`,
          [userId, key],
        );
        if (!first || !first.request_hash.equals(requestHash)) {
          throw new ApiException(
            'IDEMPOTENCY_KEY_REUSED',
            'This Idempotency-Key was used with another request; use a new key.',
          );
        }
        return { body: first.response_body, replayed: true };
      }
      const body = await work(manager);
      await manager.query(
        `UPDATE idempotency_keys SET response_status = 201, response_body = $3
          WHERE user_id = $1 AND key = $2`,
        [userId, key, JSON.stringify(kept(body))],
      );
      return { body, replayed: false };
    });
  }
}
