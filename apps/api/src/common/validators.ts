import { ApiException } from '@app/http';
import { applyDecorators } from '@nestjs/common';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, ValidateBy, ValidateIf, ValidationOptions, isISO8601 } from 'class-validator';

/**
 * Optional, but not nullable: absent is fine, null is validated (and refused) like any other
 * value. `@IsOptional()` would let null through to a NOT NULL column, a 500.
 */
export const Optional = () => ValidateIf((_: object, value: unknown) => value !== undefined);

/**
 * ISO 8601 that JavaScript can also read: isISO8601 alone accepts week and ordinal dates
 * (`2024-W01-1`, `2024-123`), which `new Date()` cannot parse (an Invalid Date, then a 500).
 * Years 1..9999 in UTC: Postgres has no year 0, and a later year would not round-trip through
 * toISOString() in a page cursor.
 */
export function isIsoDateTime(value: unknown): value is string {
  if (typeof value !== 'string' || !isISO8601(value, { strict: true })) return false;
  const year = new Date(value).getUTCFullYear();
  return year >= 1 && year <= 9999;
}
export const IsIsoDateTime = (options?: ValidationOptions) =>
  ValidateBy(
    {
      name: 'isIsoDateTime',
      validator: { validate: isIsoDateTime, defaultMessage: () => '$property must be ISO 8601' },
    },
    options,
  );
/** Query dates: ISO 8601 strings become Dates; anything else stays as is, for @IsDate to refuse. */
export const toDate = ({ value }: { value: unknown }) =>
  isIsoDateTime(value) ? new Date(value) : value;

/** An optional `expiresAt`: ISO 8601, or absent or null for never. See futureExpiry(). */
export const OptionalExpiry = () =>
  applyDecorators(
    ApiPropertyOptional({
      format: 'date-time',
      nullable: true,
      type: String,
      description: 'In the future. Absent or null: never expires.',
    }),
    IsOptional(),
    IsIsoDateTime({ message: 'expiresAt must be an ISO 8601 date-time' }),
  );

/** The expiry as a Date (null: never); one already past is a 400 on `expiresAt`. */
export function futureExpiry(expiresAt: string | null | undefined): Date | null {
  if (expiresAt == null) return null;
  const date = new Date(expiresAt);
  if (date.getTime() <= Date.now()) {
    throw new ApiException('VALIDATION_FAILED', 'expiresAt must be in the future.', [
      { field: 'expiresAt', message: 'must be in the future' },
    ]);
  }
  return date;
}
