import { ApiException, IfMatch, notFound } from '@app/http';
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
  if (!row) throw notFound(resource);
  if (Array.isArray(ifMatch) && !ifMatch.includes(row.version)) {
    throw new ApiException(
      'PRECONDITION_FAILED',
      `If-Match does not hold the current entity tag of this ${resource.toLowerCase()}; fetch it again.`,
    );
  }
  return row;
}

/** The SQLSTATE of a failed query, for mapping constraint violations to problems. */
export function sqlState(error: unknown): string | undefined {
  return error instanceof QueryFailedError
    ? (error.driverError as { code?: string }).code
    : undefined;
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
