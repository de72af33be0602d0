import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { Breakers } from './breakers';

/**
 * The breakers in the readiness body: down (so listed under `degraded`) while any is open or
 * half-open. Reported, not judged: readiness fails on the database check itself, not on the
 * breaker that guards it.
 */
@Injectable()
export class BreakersHealthIndicator {
  constructor(
    private readonly breakers: Breakers,
    private readonly indicators: HealthIndicatorService,
  ) {}

  check(): HealthIndicatorResult {
    const session = this.indicators.check('breakers');
    const states = Object.fromEntries(this.breakers.list().map((b) => [b.name, b.state]));
    return Object.values(states).every((state) => state === 'closed')
      ? session.up(states)
      : session.down(states);
  }
}
