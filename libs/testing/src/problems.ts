import type { Reply } from './http';

/** Every field a problem-details body may have (CONTRACT §2); anything else is a leak. */
const PROBLEM_FIELDS = ['type', 'title', 'status', 'detail', 'instance', 'code', 'requestId'];

/** Signs of an internal leak in an error body: a stack frame, an SQL statement, a driver error. */
const LEAK =
  /\n\s+at |\bat [\w.<>]+ \(|QueryFailedError|\b(SELECT|INSERT INTO|UPDATE|DELETE FROM)\b|"stack"/;

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: string;
  requestId: string;
  errors?: { field: string; message: string }[];
}

/**
 * Asserts that `reply` is an RFC 9457 problem with this status and code: the media type, every
 * field, the requestId equal to the X-Request-ID header, and nothing that leaks internals.
 * Returns the body for further checks.
 */
export function expectProblem(reply: Reply, status: number, code: string): ProblemBody {
  const body = reply.body as ProblemBody;
  // Status and code together, so that a failure shows what came back instead.
  expect({ status: reply.status, code: body?.code }).toEqual({ status, code });
  expect(reply.headers['content-type']).toMatch(/^application\/problem\+json\b/);
  expect(body).toEqual(
    expect.objectContaining({
      type: expect.stringMatching(/^https?:\/\/\S+$/),
      title: expect.any(String),
      status,
      detail: expect.any(String),
      instance: expect.stringMatching(/^\//),
      code,
      requestId: expect.any(String),
    }),
  );
  expect(body.title.length).toBeGreaterThan(0);
  expect(body.requestId).toBe(reply.headers['x-request-id']);
  expect(Object.keys(body).filter((key) => key !== 'errors')).toEqual(
    expect.arrayContaining(PROBLEM_FIELDS),
  );
  expect(Object.keys(body).every((key) => PROBLEM_FIELDS.includes(key) || key === 'errors')).toBe(
    true,
  );
  if (body.errors !== undefined) {
    expect(Array.isArray(body.errors)).toBe(true);
    for (const error of body.errors) {
      expect(error).toEqual({ field: expect.any(String), message: expect.any(String) });
    }
  }
  expect(reply.raw).not.toMatch(LEAK);
  return body;
}

/**
 * Asserts a 400 VALIDATION_FAILED whose `errors` name `field` (and, when given, only the listed
 * fields). Returns the body.
 */
export function expectValidationError(reply: Reply, ...fields: string[]): ProblemBody {
  const body = expectProblem(reply, 400, 'VALIDATION_FAILED');
  const named = (body.errors ?? []).map((error) => error.field);
  expect(named).toEqual(expect.arrayContaining(fields));
  return body;
}
