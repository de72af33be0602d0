import { AppConfig, InjectConfig } from '@app/config';
import { TIERS, Tier, USER_ROLES, UserRole } from '@app/database';
import { Injectable } from '@nestjs/common';
import { createSigner, createVerifier } from 'fast-jwt';
import { createHash } from 'node:crypto';

export const JWT_ALGORITHM = 'HS256';
/** Accepted difference between our clock and the token's iat/nbf/exp. */
export const CLOCK_TOLERANCE_SECONDS = 30;

export interface AccessTokenClaims {
  sub: string;
  role: UserRole;
  tier: Tier;
}

type Verify = (token: string) => Record<string, unknown>;

interface Verified {
  claims: AccessTokenClaims;
  /** When the token stops being accepted: exp plus the clock tolerance, in ms. */
  acceptUntil: number;
}

/** Verified tokens kept; past this the oldest is dropped (a Map iterates in insertion order). */
const VERIFIED_CACHE_SIZE = 10_000;

/** A key's id names the secret without revealing it: a truncated hash of it. */
function kidFor(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url').slice(0, 12);
}

function kidOf(token: string): unknown {
  try {
    const header = token.slice(0, token.indexOf('.'));
    return (JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as { kid?: unknown }).kid;
  } catch {
    return undefined;
  }
}

/**
 * Signs and verifies access tokens (fast-jwt). HS256 only (`alg: none` and every other
 * algorithm are refused), signature, `exp` (required), `nbf`, `iss` and `aud` checked with 30 s of
 * clock tolerance, and the key chosen by `kid` among the current secret and the previous ones
 * (JWT_PREVIOUS_SECRETS); the claims must be ours (a known role and tier).
 *
 * fast-jwt prepares the key once (jsonwebtoken with a string secret costs ~345 µs a call:
 * PERFORMANCE.md). A token seen before is answered from a bounded map of verified tokens, keyed by
 * the whole token (so by its signature) and honoured only until its exp: fast-jwt's own cache
 * hashes every token with SHA-256 first, which the benchmark put at ~10% of a cached read.
 */
@Injectable()
export class AccessTokenService {
  readonly signingKid: string;
  private readonly signer: (payload: Record<string, unknown>) => string;
  private readonly verifiers: ReadonlyMap<string, Verify>;
  private readonly verified = new Map<string, Verified>();

  constructor(@InjectConfig() private readonly config: AppConfig) {
    const { secret, previousSecrets, issuer, audience, accessTtlSeconds } = config.jwt;
    this.signingKid = kidFor(secret);
    this.signer = createSigner({
      key: secret,
      algorithm: JWT_ALGORITHM,
      kid: this.signingKid,
      iss: issuer,
      aud: audience,
      expiresIn: accessTtlSeconds * 1000,
    });
    // The current secret and those before a rotation, each under its own kid: a token signed
    // with a previous secret stays valid until it expires; remove the secret after the access
    // token lifetime has passed.
    this.verifiers = new Map(
      [secret, ...previousSecrets].map((key): [string, Verify] => [
        kidFor(key),
        createVerifier({
          key,
          algorithms: [JWT_ALGORITHM],
          allowedIss: issuer,
          allowedAud: audience,
          requiredClaims: ['exp', 'sub'],
          clockTolerance: CLOCK_TOLERANCE_SECONDS * 1000,
        }),
      ]),
    );
  }

  get ttlSeconds(): number {
    return this.config.jwt.accessTtlSeconds;
  }

  sign(claims: AccessTokenClaims): string {
    return this.signer({ sub: claims.sub, role: claims.role, tier: claims.tier });
  }

  /** The token's claims, or undefined for any token we did not issue or that is no longer valid. */
  verify(token: string): AccessTokenClaims | undefined {
    const known = this.verified.get(token);
    if (known) {
      if (Date.now() <= known.acceptUntil) return known.claims;
      this.verified.delete(token);
      return undefined;
    }
    const kid = kidOf(token);
    const verify = typeof kid === 'string' ? this.verifiers.get(kid) : undefined;
    if (!verify) return undefined;
    let payload: Record<string, unknown>;
    try {
      payload = verify(token);
    } catch {
      return undefined;
    }
    const { sub, role, tier, exp } = payload;
    if (typeof sub !== 'string' || typeof exp !== 'number') return undefined;
    if (!USER_ROLES.includes(role as UserRole) || !TIERS.includes(tier as Tier)) return undefined;
    const claims = { sub, role: role as UserRole, tier: tier as Tier };
    if (this.verified.size >= VERIFIED_CACHE_SIZE) {
      this.verified.delete(this.verified.keys().next().value as string);
    }
    this.verified.set(token, { claims, acceptUntil: (exp + CLOCK_TOLERANCE_SECONDS) * 1000 });
    return claims;
  }
}
