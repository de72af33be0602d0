import { SCOPES, Scope } from '@app/auth';
import { ASSIGNABLE_TIERS, ApiKeyEntity, TIERS, Tier } from '@app/database';
import { PageQueryDto } from '@app/http';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { OptionalExpiry } from '../../common/validators';
import {
  ArrayMaxSize,
  ArrayMinSize,
  ArrayUnique,
  IsArray,
  IsIn,
  IsOptional,
  IsString,
  Length,
} from 'class-validator';

const trim = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);

export class CreateApiKeyDto {
  @ApiProperty({ minLength: 1, maxLength: 100, example: 'CI pipeline' })
  @Transform(trim)
  @IsString()
  @Length(1, 100)
  name!: string;

  @ApiProperty({ enum: SCOPES, isArray: true, example: ['tasks:read'] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(SCOPES.length)
  @ArrayUnique()
  @IsIn(SCOPES, { each: true })
  scopes!: Scope[];

  @OptionalExpiry()
  expiresAt?: string | null;

  @ApiPropertyOptional({
    enum: ASSIGNABLE_TIERS,
    nullable: true,
    description: "Administrators only. Absent or null: the key has its owner's tier.",
  })
  @IsOptional()
  @IsIn(ASSIGNABLE_TIERS)
  tier?: Tier | null;
}

export class ListApiKeysQueryDto extends PageQueryDto {}

export class ApiKeyDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ description: 'The first characters of the key, to tell keys apart.' })
  prefix!: string;
  @ApiProperty({ enum: SCOPES, isArray: true }) scopes!: string[];
  @ApiProperty({
    enum: TIERS,
    nullable: true,
    type: String,
    description: "Null: the owner's tier.",
  })
  tier!: Tier | null;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) expiresAt!: string | null;
  @ApiProperty({
    format: 'date-time',
    nullable: true,
    type: String,
    description: 'Updated at most once a minute.',
  })
  lastUsedAt!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;

  static from(key: ApiKeyEntity): ApiKeyDto {
    return {
      id: key.id,
      name: key.name,
      prefix: key.prefix,
      scopes: key.scopes,
      tier: key.tier,
      expiresAt: key.expiresAt?.toISOString() ?? null,
      lastUsedAt: key.lastUsedAt?.toISOString() ?? null,
      createdAt: key.createdAt.toISOString(),
    };
  }
}

export class CreatedApiKeyDto extends ApiKeyDto {
  @ApiPropertyOptional({
    example: 'thk_4Tq0w5yXb1u2C3d4E5f6G7h8I9j0K1l2M3nOpQ',
    description:
      'The key itself: shown in this response only, never again (it is not stored). ' +
      'Absent from a replay of an Idempotency-Key.',
  })
  key?: string;
}

export class ApiKeyPageDto {
  @ApiProperty({ type: [ApiKeyDto] }) data!: ApiKeyDto[];
  @ApiProperty({ type: String, nullable: true, description: 'Pass as `cursor` for the next page.' })
  nextCursor!: string | null;
}
