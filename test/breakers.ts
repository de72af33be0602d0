import type { AppConfig } from '@app/config';
import { Breakers } from '@app/resilience';
import { Counter, Gauge, Registry } from 'prom-client';

/** A Breakers registry as an app builds it, with metrics of its own: for specs without an app. */
export function breakersFor(config: AppConfig): Breakers {
  const registry = new Registry();
  const breakers = new Breakers(
    config,
    new Gauge({
      name: 'circuit_breaker_state',
      help: 'spec',
      labelNames: ['breaker'],
      registers: [registry],
    }),
    new Counter({
      name: 'circuit_breaker_events_total',
      help: 'spec',
      labelNames: ['breaker', 'event'],
      registers: [registry],
    }),
    new Gauge({ name: 'webhook_circuit_breakers_open', help: 'spec', registers: [registry] }),
  );
  return breakers;
}
