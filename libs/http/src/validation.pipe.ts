import { ArgumentMetadata, ValidationError, ValidationPipe } from '@nestjs/common';
import { ApiException, FieldError } from './api.exception';

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

/** A JSON body must be an object: an array or a bare value is refused before field checks. */
class TaskhubValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (
      metadata.type === 'body' &&
      (typeof value !== 'object' || value === null || Array.isArray(value))
    ) {
      throw new ApiException('VALIDATION_FAILED', 'The request body must be a JSON object.');
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
