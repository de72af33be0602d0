import { Global, Module } from '@nestjs/common';
import { BreakersModule } from './breakers.module';
import { DegradationFlags } from './degradation';
import { PostgresBreaker } from './postgres-breaker';

/**
 * The api's resilience: the circuit breakers, Postgres behind its breaker, and the degradation
 * flags shared through Redis (CONTRACT §8). One instance of each per process.
 */
@Global()
@Module({
  imports: [BreakersModule],
  providers: [DegradationFlags, PostgresBreaker],
  exports: [BreakersModule, DegradationFlags],
})
export class ResilienceModule {}
