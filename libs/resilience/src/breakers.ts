import { AppConfig, InjectConfig } from '@app/config';
import { ApiException } from '@app/http';
import { HttpException, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import { LRUCache } from 'lru-cache';
import CircuitBreaker from 'opossum';
import type { Counter, Gauge } from 'prom-client';

/** The dependencies with a breaker of their own; webhooks get one per subscription. */
export type Dependency = 'postgres' | 'redis' | 'rabbitmq';
const DEPENDENCIES: readonly Dependency[] = ['postgres', 'redis', 'rabbitmq'];

export type BreakerState = 'closed' | 'half-open' | 'open';
/** `circuit_breaker_state`'s values. */
const STATE_VALUES: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };
const COUNTED_EVENTS = ['success', 'failure', 'timeout', 'reject', 'open', 'halfOpen', 'close'];
/**
 * The most webhook breakers a process keeps: the least recently used one beyond it is shut down
 * (each holds a timer for its rolling window) and starts closed if its subscription delivers
 * again. A worker delivering to more subscriptions at once than this is a worker to split.
 */
export const MAX_WEBHOOK_BREAKERS = 1000;
const WEBHOOK = 'webhook:';

/** What /v1/admin/breakers and the readiness body show of one breaker. */
export interface BreakerSnapshot {
  name: string;
  state: BreakerState;
  timeoutMs: number;
  /** Over the rolling window. */
  window: { calls: number; successes: number; failures: number; timeouts: number; rejects: number };
}

type Work = (signal?: AbortSignal) => Promise<unknown>;
type Breaker = CircuitBreaker<[Work, AbortController?], unknown>;

/**
 * A failure that says nothing about the dependency's health: a refusal of the request itself (a
 * 4xx), or Postgres rejecting the data (SQLSTATE class 22, data exception, and 23, integrity
 * constraint violation: a duplicate name, a missing foreign row). These never open a breaker.
 */
export function isCallersFault(error: unknown): boolean {
  if (error instanceof HttpException) return error.getStatus() < 500;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
}

const stateOfBreaker = (breaker: Breaker): BreakerState =>
  breaker.opened ? 'open' : breaker.halfOpen ? 'half-open' : 'closed';

/**
 * One opossum circuit breaker per dependency, created once and shared by everything that calls
 * that dependency, and one per webhook subscription, created on first use. `run()` passes the
 * work through: while a breaker is open, calls fail at once (EOPENBREAKER) instead of waiting on a
 * dependency that is down; after BREAKER_RESET_TIMEOUT_MS one call is let through to probe it.
 * State changes and outcomes go to `circuit_breaker_state{breaker}` (0 closed, 1 half-open,
 * 2 open) and `circuit_breaker_events_total{breaker,event}`. Webhook breakers are as many as the
 * subscriptions, so they are not one series each: their events count under `breaker="webhook"`,
 * and `webhook_circuit_breakers_open` counts those not closed.
 */
@Injectable()
export class Breakers implements OnApplicationShutdown {
  private readonly logger = new Logger('Breakers');
  private readonly breakers = new Map<string, Breaker>();
  private readonly webhookBreakers = new LRUCache<string, Breaker>({
    max: MAX_WEBHOOK_BREAKERS,
    dispose: (breaker, name) => {
      breaker.shutdown();
      this.openWebhooks.delete(name);
      this.openWebhooksGauge.set(this.openWebhooks.size);
    },
  });
  /** The webhook breakers open or half-open. */
  private readonly openWebhooks = new Set<string>();
  /** When each open breaker opened (ms): Retry-After counts down to its half-open probe. */
  private readonly openedAt = new Map<string, number>();

  constructor(
    @InjectConfig() private readonly config: AppConfig,
    @InjectMetric('circuit_breaker_state') private readonly state: Gauge<string>,
    @InjectMetric('circuit_breaker_events_total') private readonly events: Counter<string>,
    @InjectMetric('webhook_circuit_breakers_open') private readonly openWebhooksGauge: Gauge,
  ) {
    // Listed (and in the metrics) from the start, in this order, not from their first call
    // (another provider's start-up may call one before this one's onModuleInit would run).
    for (const dependency of DEPENDENCIES) this.breaker(dependency);
    // Every event of every breaker kind is a series from the start, at 0: an alert on a rate
    // (`increase(...{event="open"}[5m])`) sees nothing, not no data, before the first one.
    for (const breaker of [...DEPENDENCIES, 'webhook']) {
      for (const event of COUNTED_EVENTS) this.events.inc({ breaker, event }, 0);
    }
  }

  onApplicationShutdown(): void {
    for (const breaker of this.breakers.values()) breaker.shutdown();
    this.webhookBreakers.clear();
  }

  /**
   * Runs `work` through the dependency's breaker. Refused (open), it fails with 503
   * DEPENDENCY_UNAVAILABLE, too slow with 503 DEPENDENCY_TIMEOUT, both with a Retry-After; the
   * work's own errors pass through as they are.
   */
  run<T>(dependency: Dependency, work: () => Promise<T>): Promise<T> {
    return this.fire(dependency, work);
  }

  /**
   * Runs a delivery through its subscription's breaker. Per subscription, not per host: a
   * breaker judges one subscriber's endpoint, so one tenant's failing receiver never refuses, and
   * so never spends the attempts of, another's delivery to the same host (or to the same URL,
   * which may fail for one tenant's signature alone). `work` gets a signal of its own, aborted
   * when the breaker's timeout passes, so the request really stops (a fetch closes its
   * connection) rather than running on unwatched.
   */
  runWebhook<T>(subscriptionId: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return this.fire(`${WEBHOOK}${subscriptionId}`, work, new AbortController());
  }

  /**
   * The 503 to answer while the dependency's breaker is open, else undefined: for what must not
   * even start then, but cannot run through the breaker itself.
   */
  refusal(dependency: Dependency): ApiException | undefined {
    return this.stateOf(dependency) === 'open' ? this.unavailable(dependency, true) : undefined;
  }

  /** The dependency took longer than its timeout, as a 503 problem (the work may have happened). */
  timedOut(dependency: Dependency): ApiException {
    return this.unavailable(dependency, false);
  }

  /** A failure to reach the dependency at all (no connection), as a 503 problem. */
  unreachable(dependency: Dependency, error: Error): ApiException {
    return new ApiException(
      'DEPENDENCY_UNAVAILABLE',
      `${dependency} cannot be reached: ${error.message}`,
      undefined,
      { 'retry-after': '1' },
    );
  }

  private async fire<T>(
    name: string,
    work: (signal: AbortSignal) => Promise<T>,
    controller?: AbortController,
  ): Promise<T> {
    try {
      return (await this.breaker(name).fire(work as Work, controller)) as T;
    } catch (error) {
      if (!(error instanceof Error) || !CircuitBreaker.isOurError(error)) throw error;
      throw this.unavailable(name, (error as { code?: string }).code === 'EOPENBREAKER');
    }
  }

  private unavailable(name: string, open: boolean): ApiException {
    const reopensIn = (this.openedAt.get(name) ?? 0) + this.config.breakers.resetTimeoutMs;
    const retryAfter = open ? Math.max(1, Math.ceil((reopensIn - Date.now()) / 1000)) : 1;
    // Refused: nothing was done. Timed out: the work may still have happened.
    return open
      ? new ApiException(
          'DEPENDENCY_UNAVAILABLE',
          `${name} is failing: its circuit breaker is open.`,
          undefined,
          { 'retry-after': String(retryAfter) },
        )
      : new ApiException(
          'DEPENDENCY_TIMEOUT',
          `${name} did not answer within ${this.timeoutOf(name)} ms.`,
          undefined,
          { 'retry-after': '1' },
        );
  }

  /** The state of the named breaker (undefined if it was never created, or was let go). */
  stateOf(name: string): BreakerState | undefined {
    const breaker = this.breakers.get(name) ?? this.webhookBreakers.peek(name);
    return breaker && stateOfBreaker(breaker);
  }

  /** The dependencies' breakers (webhook breakers are counted in metrics, not listed). */
  list(): BreakerSnapshot[] {
    return [...this.breakers.entries()].map(([name, breaker]) => {
      const stats = breaker.stats;
      return {
        name,
        state: stateOfBreaker(breaker),
        timeoutMs: this.timeoutOf(name),
        window: {
          calls: stats.fires,
          successes: stats.successes,
          failures: stats.failures,
          timeouts: stats.timeouts,
          rejects: stats.rejects,
        },
      };
    });
  }

  private breaker(name: string): Breaker {
    const webhook = name.startsWith(WEBHOOK);
    const existing = webhook ? this.webhookBreakers.get(name) : this.breakers.get(name);
    if (existing) return existing;
    const settings = this.config.breakers;
    const created: Breaker = new CircuitBreaker(
      (work: Work, controller?: AbortController) => work(controller?.signal),
      {
        name,
        timeout: this.timeoutOf(name),
        errorThresholdPercentage: settings.errorThresholdPercentage,
        volumeThreshold: settings.volumeThreshold,
        resetTimeout: settings.resetTimeoutMs,
        rollingCountTimeout: settings.rollingWindowMs,
        rollingCountBuckets: 10,
        // Counts only: with percentiles on, opossum sorts every latency of the window on each
        // failure and for a snapshot every bucket interval, which nothing here reads.
        rollingPercentilesEnabled: false,
        enableSnapshots: false,
        errorFilter: isCallersFault,
      },
    );
    // Not opossum's own abortController: that is one per breaker, and a timeout would abort
    // every call in flight through it. Each abortable call brings its own.
    created.on('failure', (error, _latency, [, controller]) => {
      if (CircuitBreaker.isOurError(error)) controller?.abort(error);
    });
    const label = webhook ? 'webhook' : name;
    for (const event of COUNTED_EVENTS) {
      const counter = this.events.labels(label, event);
      created.on(event as 'success', () => counter.inc());
    }
    if (webhook) {
      // A subscriber's receiver failing is its own business: not logged, counted.
      const update = () => {
        if (stateOfBreaker(created) === 'closed') this.openWebhooks.delete(name);
        else this.openWebhooks.add(name);
        this.openWebhooksGauge.set(this.openWebhooks.size);
      };
      created.on('open', update);
      created.on('halfOpen', update);
      created.on('close', update);
      this.webhookBreakers.set(name, created);
      return created;
    }
    const gauge = this.state.labels(name);
    gauge.set(STATE_VALUES.closed);
    created.on('open', () => {
      this.openedAt.set(name, Date.now());
      this.logger.warn(`${name}: breaker open, calls refused for ${settings.resetTimeoutMs} ms`);
    });
    created.on('halfOpen', () => this.logger.log(`${name}: breaker half-open, one call probes`));
    created.on('close', () => this.logger.log(`${name}: breaker closed`));
    const update = () => gauge.set(STATE_VALUES[stateOfBreaker(created)]);
    created.on('open', update);
    created.on('halfOpen', update);
    created.on('close', update);
    this.breakers.set(name, created);
    return created;
  }

  /** The dependency's breaker timeout (ms): how long a call through it may take. */
  timeoutMs(dependency: Dependency): number {
    return this.timeoutOf(dependency);
  }

  private timeoutOf(name: string): number {
    const kind = name.startsWith(WEBHOOK) ? 'webhook' : (name as Dependency);
    return this.config.breakers.timeoutsMs[kind];
  }
}
