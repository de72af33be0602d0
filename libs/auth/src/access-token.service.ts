import { AppConfig, InjectConfig } from '@app/config';
import type { Tier, UserRole } from '@app/database';
import { Injectable } from '@nestjs/common';
import { KeyObject, createHash, createSecretKey } from 'node:crypto';
import { sign } from 'jsonwebtoken';

export const JWT_ALGORITHM = 'HS256';
/** Accepted difference between our clock and the token's iat/nbf/exp. */
export const CLOCK_TOLERANCE_SECONDS = 30;

export interface AccessTokenClaims {
  sub: string;
  role: UserRole;
  tier: Tier;
}

/**
 * Signs access tokens and holds the verification keys by `kid`.
 *
 * Keys are KeyObjects built once: jsonwebtoken given a string secret rebuilds a key on every
 * call (~345 µs a verification on this machine); with a KeyObject it is ~15 µs (PERFORMANCE.md).
 */
@Injectable()
export class AccessTokenService {
  private readonly signingKey: KeyObject;
  readonly signingKid: string;
  private readonly verificationKeys: ReadonlyMap<string, KeyObject>;

  constructor(@InjectConfig() private readonly config: AppConfig) {
    this.signingKey = createSecretKey(Buffer.from(config.jwt.secret, 'utf8'));
    // The kid names the secret without revealing it: a truncated hash of it.
    this.signingKid = createHash('sha256')
      .update(config.jwt.secret)
      .digest('base64url')
      .slice(0, 12);
    this.verificationKeys = new Map([[this.signingKid, this.signingKey]]);
  }

  get ttlSeconds(): number {
    return this.config.jwt.accessTtlSeconds;
  }

  sign(claims: AccessTokenClaims): string {
    return sign({ role: claims.role, tier: claims.tier }, this.signingKey, {
      algorithm: JWT_ALGORITHM,
      keyid: this.signingKid,
      subject: claims.sub,
      issuer: this.config.jwt.issuer,
      audience: this.config.jwt.audience,
      expiresIn: this.config.jwt.accessTtlSeconds,
    });
  }

  /** The key for a token's `kid`, or undefined: an unknown kid is refused. */
  keyFor(kid: unknown): KeyObject | undefined {
    return typeof kid === 'string' ? this.verificationKeys.get(kid) : undefined;
  }
}
