export { HttpMetrics } from './http-metrics';
export { REDACTED_PATHS, loggerParams } from './logger';
export { ObservabilityModule } from './observability.module';
