import { Principal, SCOPES, Scope, USER_SCOPES } from '@app/auth';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsEmail, IsString, MaxLength, MinLength } from 'class-validator';
import { TIERS, Tier, USER_ROLES, UserRole } from '@app/database';
import { UserDto } from '../../users/user.dto';

export class RegisterDto {
  @ApiProperty({ format: 'email', maxLength: 320, example: 'ada@example.com' })
  @IsEmail()
  @MaxLength(320)
  email!: string;

  @ApiProperty({ minLength: 10, maxLength: 128, example: 'correct horse battery staple' })
  @IsString()
  @MinLength(10)
  @MaxLength(128)
  password!: string;

  @ApiProperty({ minLength: 1, maxLength: 100, example: 'Ada Lovelace' })
  @IsString()
  @MinLength(1)
  @MaxLength(100)
  name!: string;
}

export class LoginDto {
  @ApiProperty({ format: 'email', example: 'ada@example.com' })
  @IsString()
  @MaxLength(320)
  email!: string;

  @ApiProperty({ example: 'correct horse battery staple' })
  @IsString()
  @MaxLength(128)
  password!: string;
}

export class RefreshDto {
  @ApiProperty({ description: 'A refresh token from register, login or an earlier refresh.' })
  @IsString()
  @MaxLength(200)
  refreshToken!: string;
}

export class TokenPairDto {
  @ApiProperty({ type: UserDto }) user!: UserDto;
  @ApiProperty({ description: 'A JWT for "Authorization: Bearer".' }) accessToken!: string;
  @ApiProperty({ description: 'Single use: each refresh returns a new one.' })
  refreshToken!: string;
  @ApiProperty({
    type: 'integer',
    description: 'Seconds until the access token expires.',
    example: 900,
  })
  expiresIn!: number;
  @ApiProperty({ example: 'Bearer' }) tokenType!: 'Bearer';
}

/** A signed-in user holds every scope over their own data, and `admin` with the admin role. */
const scopesOf = (role: UserRole): readonly Scope[] => (role === 'admin' ? SCOPES : USER_SCOPES);

export class WhoAmIDto {
  @ApiProperty({ enum: ['accessToken', 'apiKey'], description: 'What the caller signed in with.' })
  credential!: 'accessToken' | 'apiKey';
  @ApiProperty({ format: 'uuid' }) userId!: string;
  @ApiProperty({ enum: USER_ROLES }) role!: UserRole;
  @ApiProperty({ enum: TIERS }) tier!: Tier;
  @ApiPropertyOptional({ format: 'uuid', description: 'With an API key: its id.' })
  apiKeyId?: string;
  @ApiProperty({ enum: SCOPES, isArray: true, description: 'What the credential may do.' })
  scopes!: readonly Scope[];

  static from(principal: Principal): WhoAmIDto {
    const { userId, role, tier } = principal;
    if (principal.kind === 'apiKey') {
      const { apiKeyId, scopes } = principal;
      return { credential: 'apiKey', userId, role, tier, apiKeyId, scopes };
    }
    return { credential: 'accessToken', userId, role, tier, scopes: scopesOf(role) };
  }
}
