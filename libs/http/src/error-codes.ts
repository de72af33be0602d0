/**
 * Every error code the API answers with, its HTTP status and its title. Codes are stable: clients
 * branch on them. Documented in the README's error table.
 */
export const ERROR_CATALOG = {
  BAD_REQUEST: { status: 400, title: 'Bad request' },
  VALIDATION_FAILED: { status: 400, title: 'Validation failed' },
  MALFORMED_JSON: { status: 400, title: 'Malformed JSON body' },
  INVALID_CURSOR: { status: 400, title: 'Invalid pagination cursor' },
  UNAUTHENTICATED: { status: 401, title: 'Authentication required' },
  INVALID_CREDENTIALS: { status: 401, title: 'Invalid email or password' },
  INVALID_REFRESH_TOKEN: { status: 401, title: 'Invalid refresh token' },
  FORBIDDEN: { status: 403, title: 'Forbidden' },
  INSUFFICIENT_SCOPE: { status: 403, title: 'The API key lacks a scope this route needs' },
  NOT_FOUND: { status: 404, title: 'Not found' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed' },
  CONFLICT: { status: 409, title: 'Conflict' },
  EMAIL_TAKEN: { status: 409, title: 'Email already registered' },
  LAST_ADMIN: { status: 409, title: 'The last administrator cannot be demoted' },
  CATEGORY_NAME_TAKEN: { status: 409, title: 'Category name already in use' },
  IDEMPOTENCY_REQUEST_IN_PROGRESS: { status: 409, title: 'A request with this key is in progress' },
  JOB_NOT_FINISHED: { status: 409, title: 'The job has not finished yet' },
  DELIVERY_NOT_FAILED: { status: 409, title: 'Only a failed delivery can be sent again' },
  JOB_FAILED: { status: 409, title: 'The job failed' },
  REQUEST_TIMEOUT: { status: 408, title: 'The request did not arrive in time' },
  PRECONDITION_FAILED: { status: 412, title: 'Precondition failed' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Request body too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type' },
  HEADERS_TOO_LARGE: { status: 431, title: 'Request headers too large' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, title: 'Idempotency key reused with another request' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  INTERNAL_ERROR: { status: 500, title: 'Internal server error' },
  SERVICE_UNAVAILABLE: { status: 503, title: 'Service unavailable' },
  OVERLOADED: { status: 503, title: 'Server overloaded' },
  DEGRADED: { status: 503, title: 'Unavailable in degraded mode' },
  DEPENDENCY_UNAVAILABLE: { status: 503, title: 'A service this request needs is unavailable' },
  DEPENDENCY_TIMEOUT: { status: 503, title: 'A service this request needs did not answer in time' },
  HANDLER_TIMEOUT: { status: 503, title: 'The request was not handled in time' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

/** The code used for an HTTP status when nothing more specific is known. */
export function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400:
      return 'BAD_REQUEST';
    case 401:
      return 'UNAUTHENTICATED';
    case 403:
      return 'FORBIDDEN';
    case 404:
      return 'NOT_FOUND';
    case 405:
      return 'METHOD_NOT_ALLOWED';
    case 409:
      return 'CONFLICT';
    case 412:
      return 'PRECONDITION_FAILED';
    case 413:
      return 'PAYLOAD_TOO_LARGE';
    case 415:
      return 'UNSUPPORTED_MEDIA_TYPE';
    case 429:
      return 'RATE_LIMITED';
    case 503:
      return 'SERVICE_UNAVAILABLE';
    default:
      return status >= 500 ? 'INTERNAL_ERROR' : 'BAD_REQUEST';
  }
}
