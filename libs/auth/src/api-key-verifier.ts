import { AppConfig, InjectConfig } from '@app/config';
import { TIERS, Tier, USER_ROLES, UserRole } from '@app/database';
import { InjectRedis, listen } from '@app/redis';
import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type Redis from 'ioredis';
import { timingSafeEqual } from 'node:crypto';
import { DataSource } from 'typeorm';
import { parseApiKey } from './api-key-format';
import { ApiKeyUsage } from './api-key-usage';
import type { ApiKeyPrincipal } from './principal';
import { SCOPES, Scope } from './scopes';

/**
 * How long a verification is trusted without the invalidation channel: while this instance is not
 * subscribed (Redis down, reconnecting), a key is checked against the database again after this.
 * Half the 1 s promise, so that a revocation reaches every instance within 1 s even when Redis is
 * out, database round trip included; one query per key and instance every 500 ms is no load.
 */
export const UNSUBSCRIBED_TRUST_MS = 500;
/**
 * How long a verification is trusted at all, channel or not: the backstop for an invalidation
 * that was never published (the revoking instance alone could not reach Redis), which no listener
 * can notice. One query per key and instance a minute.
 */
export const MAX_TRUST_MS = 60_000;
const CACHE_SIZE = 10_000;

interface Cached {
  principal: ApiKeyPrincipal;
  /** ms; null: never expires. */
  expiresAt: number | null;
  /** When the database read behind this entry started (ms). */
  loadedAt: number;
}

type Invalidation = { keyId: string } | { userId: string };

interface KeyRow {
  id: string;
  user_id: string;
  key_hash: Buffer;
  scopes: string[];
  tier: Tier | null;
  expires_at: Date | null;
  revoked_at: Date | null;
  role: UserRole;
  user_tier: Tier;
}

/**
 * Verifies API keys. A malformed key or a bad checksum is refused before any I/O; a well-formed
 * one is looked up by its SHA-256 and compared in constant time. Verified keys are kept in
 * process, so a warm key costs a hash and a map lookup.
 *
 * Revocation, and any change to a key or to its owner's role or tier, is published on a Redis
 * channel; every instance drops what it cached (a key's expiry needs no message: it is checked on
 * every use). While an instance is not subscribed, or its channel has gone quiet (the heartbeat
 * in libs/redis notices a hung Redis or a dead network, which never close the connection), its
 * cached keys are trusted for at most UNSUBSCRIBED_TRUST_MS, and entries cached before a
 * (re)subscription are not trusted past it either: messages may have been missed. No entry is
 * trusted past MAX_TRUST_MS.
 */
@Injectable()
export class ApiKeyVerifier implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(ApiKeyVerifier.name);
  private readonly cache = new Map<string, Cached>();
  private readonly channel: string;
  private close: (() => void) | undefined;
  /** Since when the invalidation channel is listened to (ms); undefined while it is not. */
  private subscribedSince: number | undefined;
  /** Bumped by every invalidation: a load that raced one is not cached. */
  private invalidations = 0;

  constructor(
    @InjectConfig() config: AppConfig,
    @InjectDataSource() private readonly dataSource: DataSource,
    @InjectRedis() private readonly redis: Redis,
    private readonly usage: ApiKeyUsage,
  ) {
    this.channel = `${config.redis.keyPrefix}api-keys:invalidate`;
  }

  onModuleInit(): void {
    this.close = listen(this.redis, this.channel, {
      subscribed: () => (this.subscribedSince = Date.now()),
      lost: () => (this.subscribedSince = undefined),
      message: (message) => this.apply(message),
    });
  }

  onApplicationShutdown(): void {
    this.close?.();
  }

  /** The caller a key stands for, or undefined for a key that is not (or no longer) valid. */
  async verify(key: string): Promise<ApiKeyPrincipal | undefined> {
    const hash = parseApiKey(key);
    if (!hash) return undefined;
    // A lookup by hash: the timing of a map or index lookup tells nothing of any key's plaintext.
    const id = hash.toString('base64url');
    const now = Date.now();
    const cached = this.cache.get(id);
    if (cached && this.trusted(cached, now)) {
      if (cached.expiresAt !== null && now >= cached.expiresAt) return undefined;
      this.usage.record(cached.principal.apiKeyId, now);
      return cached.principal;
    }
    const invalidations = this.invalidations;
    const row = await this.load(hash);
    if (
      !row ||
      !timingSafeEqual(row.key_hash, hash) ||
      row.revoked_at !== null ||
      (row.expires_at !== null && row.expires_at.getTime() <= Date.now())
    ) {
      this.cache.delete(id);
      return undefined;
    }
    const principal: ApiKeyPrincipal = {
      kind: 'apiKey',
      userId: row.user_id,
      role: row.role,
      tier: row.tier ?? row.user_tier,
      apiKeyId: row.id,
      scopes: row.scopes.filter((scope): scope is Scope => SCOPES.includes(scope as Scope)),
    };
    if (!USER_ROLES.includes(principal.role) || !TIERS.includes(principal.tier)) return undefined;
    if (invalidations === this.invalidations) {
      if (this.cache.size >= CACHE_SIZE)
        this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(id, {
        principal,
        expiresAt: row.expires_at?.getTime() ?? null,
        loadedAt: now,
      });
    }
    this.usage.record(row.id, Date.now());
    return principal;
  }

  /** Drops a key everywhere: here at once, on other instances when they get the message. */
  async invalidateKey(keyId: string): Promise<void> {
    await this.invalidate({ keyId });
  }

  /** Drops every key of a user (their role or tier changed). */
  async invalidateUser(userId: string): Promise<void> {
    await this.invalidate({ userId });
  }

  private async invalidate(what: Invalidation): Promise<void> {
    const message = JSON.stringify(what);
    this.apply(message);
    try {
      await this.redis.publish(this.channel, message);
    } catch (error) {
      // Other instances are then unsubscribed too (same Redis) and re-check within a second.
      this.logger.warn(`Could not publish an API key invalidation: ${String(error)}`);
    }
  }

  private apply(message: string): void {
    let what: Partial<{ keyId: unknown; userId: unknown }>;
    try {
      what = JSON.parse(message) as typeof what;
    } catch {
      return;
    }
    this.invalidations += 1;
    for (const [id, entry] of this.cache) {
      const { apiKeyId, userId } = entry.principal;
      if (apiKeyId === what.keyId || userId === what.userId) this.cache.delete(id);
    }
  }

  private trusted(entry: Cached, now: number): boolean {
    const since = this.subscribedSince;
    const age = now - entry.loadedAt;
    return (
      age < MAX_TRUST_MS &&
      ((since !== undefined && entry.loadedAt >= since) || age < UNSUBSCRIBED_TRUST_MS)
    );
  }

  private async load(hash: Buffer): Promise<KeyRow | undefined> {
    const rows = await this.dataSource.query<KeyRow[]>(
      `SELECT k.id, k.user_id, k.key_hash, k.scopes, k.tier, k.expires_at, k.revoked_at,
              u.role, u.tier AS user_tier
         FROM api_keys k JOIN users u ON u.id = k.user_id
        WHERE k.key_hash = $1`,
      [hash],
    );
    return rows[0];
  }
}
