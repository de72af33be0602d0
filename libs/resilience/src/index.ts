export { Breakers, isCallersFault } from './breakers';
export type { BreakerSnapshot, BreakerState, Dependency } from './breakers';
export { BreakersHealthIndicator } from './breakers.health';
export { DegradationFlags, FEATURES } from './degradation';
export type { Feature, Flags, FlagsChange, FlagsView } from './degradation';
export { shedLoad } from './load-shedding';
export { BreakersModule } from './breakers.module';
export { ResilienceModule } from './resilience.module';
