import type { Tier, UserRole } from '@app/database';
import type { Scope } from './scopes';

/** A user signed in with an access token (JWT). */
export interface UserPrincipal {
  kind: 'user';
  userId: string;
  role: UserRole;
  tier: Tier;
}

/** A caller with an API key: the key's owner, limited to the key's scopes. */
export interface ApiKeyPrincipal {
  kind: 'apiKey';
  userId: string;
  /** The owner's role. */
  role: UserRole;
  /** The key's tier if an admin set one, else its owner's. */
  tier: Tier;
  apiKeyId: string;
  scopes: readonly Scope[];
}

/** Who is calling: resolved once by the auth guard, read by handlers via @CurrentPrincipal(). */
export type Principal = UserPrincipal | ApiKeyPrincipal;
