import { ArgumentMetadata, ValidationError, ValidationPipe } from '@nestjs/common';
import { ApiException, FieldError } from './api.exception';
import { assertStorableStrings } from './storable-strings';

/**
 * One message per field, the one a client can act on: a missing field is "is required"; else a
 * wrong type (`isString`, `isInt`, `isUUID`, `isEnum`: class-validator's constraints named `is…`)
 * before a bound (`maxLength`, `min`, `arrayMaxSize`), whatever order the decorators are in
 * (class-validator runs them bottom to top, so its first failure for a missing name would be
 * "must be shorter than or equal to 100 characters").
 */
function messageOf(error: ValidationError): string | undefined {
  const constraints = Object.entries(error.constraints ?? {});
  if (constraints.length === 0) return undefined;
  const unaccepted = constraints.find(([constraint]) => constraint === 'whitelistValidation');
  if (unaccepted) return 'is not an accepted field';
  if (error.value === undefined) return 'is required';
  const [, message] =
    constraints.find(([constraint]) => /^is[A-Z]/.test(constraint)) ?? constraints[0];
  return message;
}

function flatten(errors: ValidationError[], parent = ''): FieldError[] {
  return errors.flatMap((error) => {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const message = messageOf(error);
    const own = message === undefined ? [] : [{ field, message }];
    return [...own, ...flatten(error.children ?? [], field)];
  });
}

/**
 * A JSON body must be an object: an array or a bare value is refused before field checks. Its
 * strings, and a query's, must be storable (storable-strings.ts).
 */
class TaskhubValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (
      metadata.type === 'body' &&
      (typeof value !== 'object' || value === null || Array.isArray(value))
    ) {
      throw new ApiException('VALIDATION_FAILED', 'The request body must be a JSON object.');
    }
    // A query string can hold a NUL too (%00). The body parser has checked the body already,
    // before any guard or interceptor; the walk here also bounds the depth of a body that
    // reached the pipe some other way, before class-transformer recurses through it.
    if (metadata.type === 'body' || metadata.type === 'query') assertStorableStrings(value);
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
    transform: true,
    // The value is kept to tell a missing field from a wrong one (messageOf); it never leaves
    // the process: the problem lists fields and messages only.
    validationError: { target: false, value: true },
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
