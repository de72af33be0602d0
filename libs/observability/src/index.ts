export { createLogger, exitOnStartupFailure, PinoLoggerService } from './logger';
export { ObservabilityModule } from './observability.module';
export { REQUEST_RECORDER } from './request-telemetry';
export type { RequestRecorder } from './request-telemetry';
