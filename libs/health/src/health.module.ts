import { Global, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { Lifecycle } from './lifecycle';
import { Probes } from './probes';

/**
 * Probe building blocks shared by both apps. Each app's health controller picks its checks, and
 * provides the indicators it uses (RedisHealthIndicator needs the app's Redis client).
 */
@Global()
@Module({
  imports: [TerminusModule.forRoot({ logger: false })],
  providers: [Lifecycle, Probes],
  exports: [TerminusModule, Lifecycle, Probes],
})
export class HealthModule {}
