import type { Tier, UserRole } from '@app/database';

/** Who is calling: resolved once by the auth guard, read by handlers via @CurrentPrincipal(). */
export interface Principal {
  kind: 'user';
  userId: string;
  role: UserRole;
  tier: Tier;
}
