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
