import type { Principal } from '@app/auth';
import type { Tier } from '@app/database';
import { normalizeIp } from '@nestjs/throttler';
import type { FastifyRequest } from 'fastify';

/** Requests per rolling minute, by tier (CONTRACT §6). */
export const TIER_LIMITS: Readonly<Record<Tier, number>> = {
  anonymous: 100,
  free: 1_000,
  pro: 10_000,
  enterprise: 100_000,
};

export const WINDOW_MS = 60_000;

export interface RateLimitClient {
  /** `key:<apiKeyId>`, `user:<userId>` or `ip:<address>` (CONTRACT §6). */
  identifier: string;
  tier: Tier;
}

/**
 * Who a request counts against: its API key, else its user, else its address. The address is
 * Fastify's `request.ip`, which believes X-Forwarded-For only from the proxies TRUST_PROXY names;
 * an IPv6 address counts by its /64, which one subscriber usually holds whole.
 */
export function clientOf(request: FastifyRequest & { user?: Principal | null }): RateLimitClient {
  const principal = request.user;
  if (!principal) return { identifier: `ip:${normalizeIp(request.ip)}`, tier: 'anonymous' };
  if (principal.kind === 'apiKey') {
    return { identifier: `key:${principal.apiKeyId}`, tier: principal.tier };
  }
  return { identifier: `user:${principal.userId}`, tier: principal.tier };
}
