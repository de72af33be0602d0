import { ApiException } from '@app/http';
import { InjectRedis, withTimeout } from '@app/redis';
import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type Redis from 'ioredis';
import { Breakers } from './breakers';

/** Expensive work that degraded mode turns away. */
export const FEATURES = ['search', 'exports'] as const;
export type Feature = (typeof FEATURES)[number];

/** What an administrator sets (CONTRACT §8), shared by every instance through Redis. */
export interface Flags {
  /** Degraded mode, switched on by hand: every feature below is off. */
  degraded: boolean;
  /** Feature flags: off turns the feature away even outside degraded mode. */
  features: Record<Feature, boolean>;
}

export interface FlagsView extends Flags {
  /** Degraded mode entered on its own: the postgres breaker is not closed. */
  degradedAutomatically: boolean;
  /** What this instance serves right now. */
  serving: Record<Feature, boolean>;
}

export type FlagsChange = Partial<{
  degraded: boolean;
  features: Partial<Record<Feature, boolean>>;
}>;

const KEY = 'flags';
const RELOAD_MS = 1000;
const REDIS_WAIT_MS = 500;
/** How long a client should wait before asking again for what degraded mode turned away. */
const RETRY_AFTER_SECONDS = 30;

const DEFAULTS: Flags = { degraded: false, features: { search: true, exports: true } };

/**
 * Degradation and feature flags: a Redis hash every instance re-reads each second, so a change
 * through one instance applies everywhere within about a second. If Redis cannot be read, an
 * instance keeps the flags it last read. Degraded mode is also entered on its own while the
 * postgres breaker is not closed: the database needs its capacity for what matters most.
 */
@Injectable()
export class DegradationFlags implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Flags');
  private flags: Flags = DEFAULTS;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    @InjectRedis() private readonly redis: Redis,
    private readonly breakers: Breakers,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.reload();
    this.timer = setInterval(() => void this.reload(), RELOAD_MS).unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  view(): FlagsView {
    const automatic = this.breakers.stateOf('postgres') !== 'closed';
    const degraded = this.flags.degraded || automatic;
    const serving = Object.fromEntries(
      FEATURES.map((feature) => [feature, !degraded && this.flags.features[feature]]),
    ) as Record<Feature, boolean>;
    return { ...this.flags, degradedAutomatically: automatic, serving };
  }

  /** Throws 503 DEGRADED with a Retry-After when `feature` is not served right now. */
  ensure(feature: Feature): void {
    const view = this.view();
    if (view.serving[feature]) return;
    const why =
      view.degraded || view.degradedAutomatically
        ? 'the service is in degraded mode'
        : 'it is switched off';
    throw new ApiException('DEGRADED', `${feature} is unavailable: ${why}.`, undefined, {
      'retry-after': String(RETRY_AFTER_SECONDS),
    });
  }

  /** Applies a change everywhere (this instance at once, the others within a second). */
  async update(change: FlagsChange): Promise<FlagsView> {
    const fields: Record<string, string> = {};
    if (change.degraded !== undefined) fields.degraded = String(change.degraded);
    for (const feature of FEATURES) {
      const on = change.features?.[feature];
      if (on !== undefined) fields[`feature:${feature}`] = String(on);
    }
    if (Object.keys(fields).length > 0) {
      try {
        await withTimeout(
          this.breakers.run('redis', () => this.redis.hset(KEY, fields)),
          REDIS_WAIT_MS,
        );
      } catch (error) {
        throw new ApiException(
          'DEPENDENCY_UNAVAILABLE',
          `The flags cannot be stored: Redis is unavailable (${(error as Error).message}).`,
          undefined,
          { 'retry-after': '1' },
        );
      }
    }
    await this.reload();
    return this.view();
  }

  private async reload(): Promise<void> {
    let stored: Record<string, string>;
    try {
      stored = await withTimeout(
        this.breakers.run('redis', () => this.redis.hgetall(KEY)),
        REDIS_WAIT_MS,
      );
    } catch {
      return; // the last flags read stay in force
    }
    const next: Flags = {
      degraded: stored.degraded === 'true',
      features: { ...DEFAULTS.features },
    };
    for (const feature of FEATURES) {
      const value = stored[`feature:${feature}`];
      if (value !== undefined) next.features[feature] = value === 'true';
    }
    if (next.degraded !== this.flags.degraded) {
      this.logger.warn(`Degraded mode ${next.degraded ? 'on' : 'off'}`);
    }
    this.flags = next;
  }
}
