import { HttpException } from '@nestjs/common';
import { ERROR_CATALOG, ErrorCode } from './error-codes';

export interface FieldError {
  field: string;
  message: string;
}

/** What domain code throws: a stable code, a human detail, and for validation, the fields. */
export class ApiException extends HttpException {
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly errors?: FieldError[],
    readonly headers: Record<string, string> = {},
  ) {
    super(detail, ERROR_CATALOG[code].status);
  }
}

export const notFound = (what: string): ApiException =>
  new ApiException('NOT_FOUND', `${what} not found`);

/**
 * The ApiException an error is or carries: TypeORM wraps what the driver threw in a
 * QueryFailedError (`driverError`), and a circuit breaker refusing a query throws one of ours.
 */
export function apiExceptionIn(error: unknown): ApiException | undefined {
  if (error instanceof ApiException) return error;
  const driverError = (error as { driverError?: unknown } | null)?.driverError;
  return driverError instanceof ApiException ? driverError : undefined;
}
