import { Global, Module } from '@nestjs/common';
import { makeCounterProvider, makeGaugeProvider } from '@willsoto/nestjs-prometheus';
import { BreakersHealthIndicator } from './breakers.health';
import { Breakers } from './breakers';
import { DegradationFlags } from './degradation';
import { PostgresBreaker } from './postgres-breaker';

/** Circuit breakers for every dependency, one instance per process (CONTRACT §8). */
@Global()
// BreakersHealthIndicator's HealthIndicatorService comes from the global HealthModule.
@Module({
  providers: [
    Breakers,
    BreakersHealthIndicator,
    DegradationFlags,
    PostgresBreaker,
    makeGaugeProvider({
      name: 'circuit_breaker_state',
      help: 'Circuit breaker state by breaker: 0 closed, 1 half-open, 2 open.',
      labelNames: ['breaker'],
    }),
    makeCounterProvider({
      name: 'circuit_breaker_events_total',
      help:
        'Circuit breaker events by breaker: success, failure, timeout, reject (refused while ' +
        'open), open, halfOpen, close.',
      labelNames: ['breaker', 'event'],
    }),
  ],
  exports: [Breakers, BreakersHealthIndicator, DegradationFlags],
})
export class ResilienceModule {}
