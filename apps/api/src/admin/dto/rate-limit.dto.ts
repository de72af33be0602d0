import { RateLimitConfigEntity } from '@app/database';
import { PageQueryDto } from '@app/http';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { OptionalExpiry } from '../../common/validators';

/** How problems (404s) name an override. */
export const RATE_LIMIT_RESOURCE = 'Rate-limit override';
export const MAX_REQUESTS_PER_MINUTE = 10_000_000;
export const MAX_IDENTIFIER_LENGTH = 200;

/**
 * The identifier forms the limiter uses (CONTRACT §6), as the table's check has them, without
 * control characters: a NUL would fail in Postgres (a 500), and no client identifier has any.
 */
const IDENTIFIER = /^(key|user|ip):[^\p{Cc}]+$/u;

export function isRateLimitIdentifier(value: unknown): value is string {
  return (
    typeof value === 'string' && value.length <= MAX_IDENTIFIER_LENGTH && IDENTIFIER.test(value)
  );
}

export class PutRateLimitDto {
  @ApiProperty({ type: 'integer', minimum: 1, maximum: MAX_REQUESTS_PER_MINUTE, example: 60 })
  @IsInt()
  @Min(1)
  @Max(MAX_REQUESTS_PER_MINUTE)
  requestsPerMinute!: number;

  @ApiPropertyOptional({
    maxLength: 500,
    nullable: true,
    type: String,
    example: 'Scraping; see ticket OPS-1234',
    description: 'Absent or null: none. A PUT replaces the whole override.',
  })
  @IsOptional()
  @IsString()
  @MaxLength(500)
  reason?: string | null;

  @OptionalExpiry()
  expiresAt?: string | null;
}

export class ListRateLimitsQueryDto extends PageQueryDto {}

export class RateLimitDto {
  @ApiProperty({
    maxLength: MAX_IDENTIFIER_LENGTH,
    example: 'user:4b3f9a0e-2c1d-4e5f-8a7b-6c5d4e3f2a1b',
    description: '`key:<apiKeyId>`, `user:<userId>` or `ip:<address>` (IPv6: its /64).',
  })
  identifier!: string;

  @ApiProperty({ type: 'integer', minimum: 1, maximum: MAX_REQUESTS_PER_MINUTE })
  requestsPerMinute!: number;
  @ApiProperty({ type: String, nullable: true }) reason!: string | null;

  @ApiProperty({
    format: 'date-time',
    nullable: true,
    type: String,
    description: 'Null: never. Past: kept, but no longer applied (the tier limit is).',
  })
  expiresAt!: string | null;

  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time', description: 'The last PUT.' }) updatedAt!: string;

  static from(config: RateLimitConfigEntity): RateLimitDto {
    return {
      identifier: config.identifier,
      requestsPerMinute: config.requestsPerMinute,
      reason: config.reason,
      expiresAt: config.expiresAt?.toISOString() ?? null,
      createdAt: config.createdAt.toISOString(),
      updatedAt: config.updatedAt.toISOString(),
    };
  }
}

export class RateLimitPageDto {
  @ApiProperty({
    type: [RateLimitDto],
    description:
      'Every stored override by identifier, expired ones included (they no longer apply, and ' +
      'stay listed until deleted or replaced, so a lapsed override can be seen and renewed).',
  })
  data!: RateLimitDto[];

  @ApiProperty({ type: String, nullable: true, description: 'Pass as `cursor` for the next page.' })
  nextCursor!: string | null;
}
