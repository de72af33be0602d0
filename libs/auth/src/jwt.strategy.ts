import { AppConfig, InjectConfig } from '@app/config';
import { TIERS, USER_ROLES } from '@app/database';
import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { ExtractJwt, Strategy } from 'passport-jwt';
import { AccessTokenService, CLOCK_TOLERANCE_SECONDS, JWT_ALGORITHM } from './access-token.service';
import type { Principal } from './principal';

interface JwtPayload {
  sub?: unknown;
  exp?: unknown;
  role?: unknown;
  tier?: unknown;
}

function kidOf(rawToken: string): unknown {
  try {
    const header = rawToken.slice(0, rawToken.indexOf('.'));
    return (JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as { kid?: unknown }).kid;
  } catch {
    return undefined;
  }
}

/**
 * Bearer JWTs: HS256 only (`alg: none` and every other algorithm are refused), signature, `exp`,
 * `nbf`, `iss` and `aud` checked with 30 s of clock tolerance, and the key chosen by `kid`.
 */
@Injectable()
export class JwtStrategy extends PassportStrategy(Strategy, 'jwt') {
  constructor(@InjectConfig() config: AppConfig, tokens: AccessTokenService) {
    super({
      jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
      secretOrKeyProvider: (
        _request: unknown,
        rawToken: string,
        done: (error: Error | null, key?: string | Buffer) => void,
      ) => {
        const key = tokens.keyFor(kidOf(rawToken));
        // passport-jwt hands the key to jsonwebtoken, which takes a KeyObject (typed too narrowly).
        if (key) done(null, key as unknown as Buffer);
        else done(new Error('unknown kid'));
      },
      algorithms: [JWT_ALGORITHM],
      issuer: config.jwt.issuer,
      audience: config.jwt.audience,
      jsonWebTokenOptions: { clockTolerance: CLOCK_TOLERANCE_SECONDS },
    });
  }

  validate(payload: JwtPayload): Principal | false {
    const { sub, role, tier, exp } = payload;
    // jsonwebtoken checks exp only when present: a token that never expires is refused here.
    if (typeof sub !== 'string' || typeof exp !== 'number') return false;
    if (!USER_ROLES.includes(role as Principal['role'])) return false;
    if (!TIERS.includes(tier as Principal['tier'])) return false;
    return {
      kind: 'user',
      userId: sub,
      role: role as Principal['role'],
      tier: tier as Principal['tier'],
    };
  }
}
