import { APP_CONFIG, AppConfig } from '@app/config';
import { DynamicModule, Module } from '@nestjs/common';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import type { Logger } from 'pino';
import { collectDefaultMetrics, register } from 'prom-client';
import { PinoLoggerService, createLogger } from './logger';
import { MetricsController } from './metrics.controller';
import { ROOT_LOGGER, RequestTelemetry, httpMetricProviders } from './request-telemetry';

/**
 * prom-client's gauges of the totals of `nodejs_active_handles`, `_requests` and `_resources`
 * (by type): gauges whose names end in `_total`, which Prometheus keeps for counters, so
 * `promtool check metrics` refuses them. The totals are `sum(nodejs_active_handles)` and so on.
 */
const NON_CONFORMING_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** prom-client's defaults (process_*, nodejs_*) go once into the process-wide registry. */
function collectDefaultMetricsOnce(): void {
  if (register.getSingleMetric('process_cpu_user_seconds_total')) return;
  collectDefaultMetrics();
  for (const name of NON_CONFORMING_DEFAULTS) register.removeSingleMetric(name);
}

/**
 * Logs, metrics and the /metrics route, for either app. The entry point hands Nest the
 * PinoLoggerService: `app.useLogger(app.get(PinoLoggerService))`.
 */
@Module({})
export class ObservabilityModule {
  static forRoot(service: string): DynamicModule {
    collectDefaultMetricsOnce();
    return {
      module: ObservabilityModule,
      global: true,
      imports: [
        PrometheusModule.register({
          controller: MetricsController,
          defaultMetrics: { enabled: false },
        }),
      ],
      providers: [
        {
          provide: ROOT_LOGGER,
          inject: [APP_CONFIG],
          useFactory: (config: AppConfig) => createLogger(config, service),
        },
        {
          provide: PinoLoggerService,
          inject: [ROOT_LOGGER],
          useFactory: (logger: Logger) => new PinoLoggerService(logger),
        },
        ...httpMetricProviders,
        RequestTelemetry,
      ],
      exports: [PrometheusModule, ROOT_LOGGER, PinoLoggerService, ...httpMetricProviders],
    };
  }
}
