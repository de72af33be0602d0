import { ASSIGNABLE_TIERS, TIERS, Tier, USER_ROLES, UserRole } from '@app/database';
import { PageQueryDto } from '@app/http';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsIn, IsOptional, IsString, Length } from 'class-validator';
import { Optional } from '../../common/validators';
import { UserDto } from '../../users/user.dto';

export const ADMIN_USER_SORTS = ['createdAt', '-createdAt'] as const;

/** Emails are stored trimmed and lower-cased; a filter on one matches the same way. */
const normalizeEmail = ({ value }: { value: unknown }) =>
  typeof value === 'string' ? value.trim().toLowerCase() : value;

export class ListAdminUsersQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ enum: USER_ROLES })
  @IsOptional()
  @IsIn(USER_ROLES)
  role?: UserRole;

  @ApiPropertyOptional({ enum: TIERS })
  @IsOptional()
  @IsIn(TIERS)
  tier?: Tier;

  @ApiPropertyOptional({ description: 'The account with exactly this email, ignoring case.' })
  @IsOptional()
  @Transform(normalizeEmail)
  @IsString()
  @Length(1, 320)
  email?: string;

  @ApiPropertyOptional({ enum: ADMIN_USER_SORTS, default: '-createdAt' })
  @IsOptional()
  @IsIn(ADMIN_USER_SORTS)
  sort: (typeof ADMIN_USER_SORTS)[number] = '-createdAt';
}

export class UpdateAdminUserDto {
  @ApiPropertyOptional({
    enum: USER_ROLES,
    description: 'Demoting the last administrator is refused (409 LAST_ADMIN).',
  })
  @Optional()
  @IsIn(USER_ROLES)
  role?: UserRole;

  @ApiPropertyOptional({ enum: ASSIGNABLE_TIERS })
  @Optional()
  @IsIn(ASSIGNABLE_TIERS)
  tier?: Tier;
}

export class AdminUserPageDto {
  @ApiProperty({ type: [UserDto] }) data!: UserDto[];
  @ApiProperty({ type: String, nullable: true, description: 'Pass as `cursor` for the next page.' })
  nextCursor!: string | null;
}
