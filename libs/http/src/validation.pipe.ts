import { ArgumentMetadata, ValidationError, ValidationPipe } from '@nestjs/common';
import { ApiException, FieldError } from './api.exception';
import { JSON_MAX_DEPTH } from './fastify-options';

function flatten(errors: ValidationError[], parent = ''): FieldError[] {
  return errors.flatMap((error) => {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const own = Object.entries(error.constraints ?? {}).map(([constraint, message]) => ({
      field,
      message: constraint === 'whitelistValidation' ? 'is not an accepted field' : message,
    }));
    return [...own, ...flatten(error.children ?? [], field)];
  });
}

/** What nulCharacterAt answers for a value nested deeper than any body may be. */
const TOO_DEEP = Symbol('too deep');

/**
 * The path of the first string holding a NUL character, which no Postgres text column takes. The
 * body parser already refuses deeper bodies; the bound here keeps the recursion safe whatever
 * hands it a value.
 */
function nulCharacterAt(
  value: unknown,
  path = '',
  depth = 0,
): string | typeof TOO_DEEP | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path : undefined;
  if (typeof value !== 'object' || value === null) return undefined;
  if (depth >= JSON_MAX_DEPTH) return TOO_DEEP;
  for (const [key, child] of Object.entries(value)) {
    const found = nulCharacterAt(child, path ? `${path}.${key}` : key, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * A JSON body must be an object: an array or a bare value is refused before field checks. A NUL
 * character in any string of a body or query is refused too: Postgres would fail on it (a 500).
 */
class TaskhubValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (
      metadata.type === 'body' &&
      (typeof value !== 'object' || value === null || Array.isArray(value))
    ) {
      throw new ApiException('VALIDATION_FAILED', 'The request body must be a JSON object.');
    }
    if (metadata.type === 'body' || metadata.type === 'query') {
      const field = nulCharacterAt(value);
      if (field === TOO_DEEP) {
        throw new ApiException(
          'VALIDATION_FAILED',
          `The request nests arrays and objects deeper than ${JSON_MAX_DEPTH} levels.`,
        );
      }
      if (field !== undefined) {
        throw new ApiException('VALIDATION_FAILED', `${field}: must not contain NUL characters`, [
          { field, message: 'must not contain NUL characters' },
        ]);
      }
    }
    return super.transform(value, metadata);
  }
}

/**
 * Bodies and queries are validated against their DTO; unknown fields are refused (no mass
 * assignment) and values are transformed to the DTO's types.
 */
export function createValidationPipe(): ValidationPipe {
  return new TaskhubValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    stopAtFirstError: true,
    transform: true,
    validationError: { target: false, value: false },
    exceptionFactory: (errors) => {
      const fields = flatten(errors);
      return new ApiException(
        'VALIDATION_FAILED',
        fields.map((e) => `${e.field}: ${e.message}`).join('; ') || 'The request is not valid.',
        fields,
      );
    },
  });
}
