import { ApiException } from './api.exception';

/**
 * How deeply a JSON body may nest arrays and objects (`{"a":1}` is 1 level). Our deepest body is
 * 3; what walks a parsed body (the check below, class-transformer, class-validator) recurses, so a
 * body of a few thousand levels would overflow the stack, a 500 without credentials.
 */
export const JSON_MAX_DEPTH = 32;

/**
 * What no Postgres text, json or jsonb value can hold: a NUL character, and a UTF-16 surrogate
 * without its pair (JSON's `"\ud800"`), which is no Unicode character at all. Stored, the first
 * fails the statement; the second fails in json and jsonb and turns into U+FFFD in text, so what
 * was stored is not what the 201 echoed.
 */
// eslint-disable-next-line no-control-regex -- NUL is exactly what this looks for
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** What unstorableAt answers for a value nested deeper than any body may be. */
const TOO_DEEP = Symbol('too deep');

/** A key as a field name in a problem: its unstorable characters become U+FFFD. */
function printable(key: string): string {
  return key.replace(new RegExp(UNSTORABLE.source, 'g'), '\uFFFD');
}

/**
 * The path (`filter.q`, `tags.1`) of the first string, or object key, that Postgres cannot
 * store; '' for the value itself. The body parser refuses deeper bodies before this runs; the
 * bound here keeps the recursion safe whatever hands it a value.
 */
function unstorableAt(value: unknown, path = '', depth = 0): string | typeof TOO_DEEP | undefined {
  if (typeof value === 'string') return UNSTORABLE.test(value) ? path : undefined;
  if (typeof value !== 'object' || value === null) return undefined;
  if (depth >= JSON_MAX_DEPTH) return TOO_DEEP;
  for (const [key, child] of Object.entries(value)) {
    const field = path ? `${path}.${printable(key)}` : printable(key);
    if (UNSTORABLE.test(key)) return field;
    const found = unstorableAt(child, field, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Refuses, with a 400 VALIDATION_FAILED naming the field, a parsed body or query holding a string
 * Postgres cannot store. Every route's input passes here before any handler, guard or
 * interceptor reads it, so nothing is written, logged to a jsonb column or echoed.
 */
export function assertStorableStrings(value: unknown): void {
  const field = unstorableAt(value);
  if (field === undefined) return;
  if (field === TOO_DEEP) {
    throw new ApiException(
      'VALIDATION_FAILED',
      `The request nests arrays and objects deeper than ${JSON_MAX_DEPTH} levels.`,
    );
  }
  const message = 'must not contain NUL characters or unpaired UTF-16 surrogates';
  const name = field || 'body';
  throw new ApiException('VALIDATION_FAILED', `${name}: ${message}`, [{ field: name, message }]);
}

/**
 * JSON text can only produce an unstorable string through a `\u` escape: a raw NUL is not valid
 * JSON, and bytes that are not UTF-8 were decoded to U+FFFD. A body without one needs no walk.
 */
export function mayHoldUnstorableStrings(json: string): boolean {
  return json.includes('\\u');
}
