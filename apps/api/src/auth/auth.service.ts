import { AccessTokenService, hashForUnknownUser, hashPassword, verifyPassword } from '@app/auth';
import { UserEntity } from '@app/database';
import { ApiException } from '@app/http';
import { Injectable } from '@nestjs/common';
import { UserDto } from '../users/user.dto';
import { UsersService } from '../users/users.service';
import { LoginDto, RegisterDto, TokenPairDto } from './dto/auth.dto';
import { RefreshTokensService } from './refresh-tokens.service';

@Injectable()
export class AuthService {
  constructor(
    private readonly users: UsersService,
    private readonly accessTokens: AccessTokenService,
    private readonly refreshTokens: RefreshTokensService,
  ) {}

  async register(dto: RegisterDto): Promise<TokenPairDto> {
    const user = await this.users.create({
      email: dto.email,
      name: dto.name,
      passwordHash: await hashPassword(dto.password),
    });
    return this.pairFor(user, await this.refreshTokens.issue(user.id));
  }

  /** Unknown email and wrong password give the same answer, in the same time. */
  async login(dto: LoginDto): Promise<TokenPairDto> {
    const user = await this.users.findByEmailWithPassword(dto.email);
    const matches = await verifyPassword(
      dto.password,
      user?.passwordHash ?? (await hashForUnknownUser()),
    );
    if (!user || !matches) {
      throw new ApiException('INVALID_CREDENTIALS', 'The email or password is wrong.');
    }
    return this.pairFor(user, await this.refreshTokens.issue(user.id));
  }

  async refresh(refreshToken: string): Promise<TokenPairDto> {
    const rotated = await this.refreshTokens.rotate(refreshToken);
    const user = await this.users.findById(rotated.userId);
    if (!user) {
      throw new ApiException(
        'INVALID_REFRESH_TOKEN',
        'The refresh token is invalid, expired or revoked.',
      );
    }
    return this.pairFor(user, rotated.refreshToken);
  }

  private pairFor(user: UserEntity, refreshToken: string): TokenPairDto {
    return {
      user: UserDto.from(user),
      accessToken: this.accessTokens.sign({ sub: user.id, role: user.role, tier: user.tier }),
      refreshToken,
      expiresIn: this.accessTokens.ttlSeconds,
      tokenType: 'Bearer',
    };
  }
}
