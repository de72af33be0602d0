import { Global, Module } from '@nestjs/common';
import { makeCounterProvider, makeGaugeProvider } from '@willsoto/nestjs-prometheus';
import { BreakersHealthIndicator } from './breakers.health';
import { Breakers } from './breakers';

/**
 * The circuit breakers alone (CONTRACT §8), one instance per process: what the worker needs to
 * publish through the `rabbitmq` breaker and call webhooks through theirs, without the api's
 * Redis-backed degradation flags. ResilienceModule includes it.
 */
@Global()
// BreakersHealthIndicator's HealthIndicatorService comes from the global HealthModule.
@Module({
  providers: [
    Breakers,
    BreakersHealthIndicator,
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
    makeGaugeProvider({
      name: 'webhook_circuit_breakers_open',
      help: 'Webhook subscriptions whose circuit breaker is open or half-open.',
    }),
  ],
  exports: [Breakers, BreakersHealthIndicator],
})
export class BreakersModule {}
