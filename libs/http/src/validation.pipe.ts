import { ArgumentMetadata, ValidationError, ValidationPipe } from '@nestjs/common';
import { ApiException, FieldError } from './api.exception';
import { assertStorableStrings } from './storable-strings';

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
