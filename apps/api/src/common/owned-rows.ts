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

/**
 * If-Match on a resource that has no versions, and so no entity tag (RFC 9110 §13.1.1): a list of
 * tags never matches, and `*` holds while the resource exists. Called before the write, which
 * then does not happen when this throws: 412, or 404 for a missing resource (a response that
 * would not have been 2xx ignores the precondition, §13.2.1). `creates`: a PUT that would create
 * the resource, where a failed condition is 412 whether or not it exists.
 */
export async function checkUnversioned(
  ifMatch: IfMatch,
  resource: string,
  exists: () => Promise<boolean>,
  creates = false,
): Promise<void> {
  if (ifMatch === undefined || (ifMatch === 'any' && !creates)) return;
  const found = await exists();
  if (ifMatch === 'any' ? !found : found || creates) {
    throw new ApiException(
      'PRECONDITION_FAILED',
      ifMatch === 'any'
        ? `If-Match: * requires the ${resource.toLowerCase()} to exist.`
        : `This ${resource.toLowerCase()} has no entity tag, so no If-Match tag can match; send none, or *.`,
    );
  }
  if (!found) throw notFound(resource);
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
