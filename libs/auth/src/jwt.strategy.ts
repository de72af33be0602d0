import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { AccessTokenService } from './access-token.service';
import { BearerTokenStrategy } from './bearer-token.strategy';
import type { Principal } from './principal';

/** Access tokens (JWTs) in the Authorization header, through passport. */
@Injectable()
export class JwtStrategy extends PassportStrategy(BearerTokenStrategy, 'jwt') {
  constructor(private readonly tokens: AccessTokenService) {
    super();
  }

  validate(token: string): Principal | false {
    const claims = this.tokens.verify(token);
    if (!claims) return false;
    return { kind: 'user', userId: claims.sub, role: claims.role, tier: claims.tier };
  }
}
