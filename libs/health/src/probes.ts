import { Injectable } from '@nestjs/common';
import {
  HealthCheckResult,
  HealthCheckService,
  HealthIndicatorFunction,
  HealthIndicatorResult,
  HealthIndicatorService,
} from '@nestjs/terminus';
import { Lifecycle } from './lifecycle';

export interface Readiness {
  httpStatus: 200 | 503;
  body: HealthCheckResult & { degraded?: HealthIndicatorResult };
}

/**
 * Readiness = every critical check up and not draining. Optional checks (Redis, RabbitMQ for the
 * api) are reported, and their failure marks the body `degraded`, but never fails the probe:
 * the instance can still serve, and Kubernetes pulling it would only make things worse.
 */
@Injectable()
export class Probes {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly lifecycle: Lifecycle,
  ) {}

  async readiness(
    critical: HealthIndicatorFunction[],
    optional: HealthIndicatorFunction[] = [],
  ): Promise<Readiness> {
    const draining = () => {
      const session = this.indicators.check('lifecycle');
      return this.lifecycle.draining
        ? session.down({ state: 'draining' })
        : session.up({ state: 'serving' });
    };
    const [core, extra] = await Promise.all([
      this.health.check([draining, ...critical]).catch((error: unknown) => {
        const response = (error as { getResponse?: () => unknown }).getResponse?.();
        if (response && typeof response === 'object' && 'status' in response) {
          return response as HealthCheckResult;
        }
        throw error;
      }),
      Promise.all(optional.map(async (check) => check())),
    ]);
    const degraded: HealthIndicatorResult = {};
    for (const result of extra) {
      for (const [key, value] of Object.entries(result)) {
        core.details[key] = value;
        if (value.status === 'up') (core.info ??= {})[key] = value;
        else degraded[key] = value;
      }
    }
    if (core.status !== 'ok') return { httpStatus: 503, body: core };
    if (Object.keys(degraded).length === 0) return { httpStatus: 200, body: core };
    return { httpStatus: 200, body: { ...core, degraded } };
  }
}
