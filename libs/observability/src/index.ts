export { PinoLoggerService, createLogger } from './logger';
export { ObservabilityModule } from './observability.module';
export { ROOT_LOGGER, RequestTelemetry } from './request-telemetry';
