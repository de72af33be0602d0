import { AppConfig, APP_CONFIG } from '@app/config';
import { DynamicModule, Module } from '@nestjs/common';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { LoggerModule } from 'nestjs-pino';
import { collectDefaultMetrics, register } from 'prom-client';
import { HttpMetrics, httpMetricProviders } from './http-metrics';
import { loggerParams } from './logger';
import { MetricsController } from './metrics.controller';

/** prom-client's defaults (process_*, nodejs_*) go once into the process-wide registry. */
function collectDefaultMetricsOnce(): void {
  if (!register.getSingleMetric('process_cpu_user_seconds_total')) collectDefaultMetrics();
}

/** Logs, metrics and the /metrics route, for either app. */
@Module({})
export class ObservabilityModule {
  static forRoot(service: string): DynamicModule {
    collectDefaultMetricsOnce();
    return {
      module: ObservabilityModule,
      global: true,
      imports: [
        LoggerModule.forRootAsync({
          inject: [APP_CONFIG],
          useFactory: (config: AppConfig) => loggerParams(config, service),
        }),
        PrometheusModule.register({
          controller: MetricsController,
          defaultMetrics: { enabled: false },
        }),
      ],
      providers: [...httpMetricProviders, HttpMetrics],
      exports: [PrometheusModule, ...httpMetricProviders],
    };
  }
}
