import { ApiException, IfMatch, notFound } from '@app/http';
import { DatabaseError } from 'pg';
import { EntityManager, EntityTarget, FindOptionsWhere, QueryFailedError } from 'typeorm';

interface Owned {
  id: string;
  userId: string;
  version: number;
}

/**
 * Loads the caller's row for a write and locks it until the transaction ends, then checks
 * If-Match. Of two writers holding the same entity tag, the second waits for the first, sees the
 * new version and gets 412. Another user's row is 404, like a missing one.
 */
export async function lockOwnedForWrite<T extends Owned>(
  manager: EntityManager,
  entity: EntityTarget<T>,
  owner: { id: string; userId: string },
  ifMatch: IfMatch,
  resource: string,
): Promise<T> {
  const row = await manager.findOne(entity, {
    where: { id: owner.id, userId: owner.userId } as FindOptionsWhere<T>,
    lock: { mode: 'pessimistic_write' },
  });
  return checkIfMatch(row, ifMatch, resource);
}

/** The caller's row, locked for a write, if If-Match holds: else 404 (no row) or 412. */
export function checkIfMatch<T extends { version: number }>(
  row: T | null | undefined,
  ifMatch: IfMatch,
  resource: string,
): T {
  if (!row) throw notFound(resource);
  if (Array.isArray(ifMatch) && !ifMatch.includes(row.version)) throw preconditionFailed(resource);
  return row;
}

/** 412: If-Match does not hold the resource's current entity tag. */
export function preconditionFailed(resource: string): ApiException {
  return new ApiException(
    'PRECONDITION_FAILED',
    `If-Match does not hold the current entity tag of this ${resource.toLowerCase()}; fetch it again.`,
  );
}

/**
 * The versions a write's own statement may change under If-Match (`version = ANY(...)`): its
 * entity tags, or null for any version when there is no If-Match or it is `*` (the statement
 * then needs only the row to exist).
 */
export const acceptedVersions = (ifMatch: IfMatch): number[] | null =>
  Array.isArray(ifMatch) ? ifMatch : null;

/**
 * If-Match on a resource that has no versions, and so no entity tag (RFC 9110 §13.1.1): a list of
 * tags never matches, and `*` holds while the resource exists. Called before the write, which
 * then does not happen when this throws: 412, or 404 for a missing resource (a response that
 * would not have been 2xx ignores the precondition, §13.2.1). `*` passes here: the write itself
 * must then refuse a missing resource in the statement that writes (404, or
 * unversionedStarFailed for a PUT that would create), so that a concurrent DELETE cannot slip in
 * between a check and the write. `exists` of a PUT that creates is always true: the PUT would
 * succeed on a missing resource, so the condition is evaluated, and fails, either way.
 */
export async function checkUnversioned(
  ifMatch: IfMatch,
  resource: string,
  exists: () => Promise<boolean>,
): Promise<void> {
  if (!Array.isArray(ifMatch)) return;
  if (!(await exists())) throw notFound(resource);
  throw new ApiException(
    'PRECONDITION_FAILED',
    `This ${resource.toLowerCase()} has no entity tag, so no If-Match tag can match; send none, or *.`,
  );
}

/** `If-Match: *` on a PUT that found nothing to replace: it must not create. */
export const unversionedStarFailed = (resource: string): ApiException =>
  new ApiException(
    'PRECONDITION_FAILED',
    `If-Match: * requires the ${resource.toLowerCase()} to exist.`,
  );

/**
 * The SQLSTATE of a failed query, for mapping constraint violations to problems: from TypeORM's
 * QueryFailedError, or from pg's own error where a prepared statement ran on the connection.
 */
export function sqlState(error: unknown): string | undefined {
  if (error instanceof QueryFailedError) return (error.driverError as { code?: string }).code;
  return error instanceof DatabaseError ? error.code : undefined;
}

export const UNIQUE_VIOLATION = '23505';
export const FOREIGN_KEY_VIOLATION = '23503';

/** A PATCH must change something: an empty body is more likely a client bug than a wish. */
export function requireChanges<T extends object>(dto: T): T {
  if (Object.values(dto).every((value) => value === undefined)) {
    throw new ApiException('VALIDATION_FAILED', 'Send at least one field to change.');
  }
  return dto;
}
