export { PinoLoggerService } from './logger';
export { ObservabilityModule } from './observability.module';
