import { AppConfig, ConfigModule } from '@app/config';
import { DatabaseModule } from '@app/database';
import { HealthModule } from '@app/health';
import { OutboxModule } from '@app/messaging';
import { BreakersModule } from '@app/resilience';
import { HttpConventionsModule } from '@app/http';
import { ObservabilityModule } from '@app/observability';
import { DynamicModule, Module } from '@nestjs/common';
import { makeCounterProvider } from '@willsoto/nestjs-prometheus';
import { ExportsModule } from './exports/exports.module';
import { HealthController } from './health/health.controller';
import { ConsumerStatus } from './jobs/consumer-status';
import { JobsController } from './jobs/jobs.controller';
import { Retention } from './maintenance/retention';
import { RequestLogStore } from './request-logs/request-log.store';
import { RequestLogsController } from './request-logs/request-logs.controller';
import { WebhooksModule } from './webhooks/webhooks.module';

@Module({})
export class WorkerModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: WorkerModule,
      imports: [
        ConfigModule.forRoot(config),
        ObservabilityModule.forRoot('worker'),
        DatabaseModule.forRoot({ applicationName: 'taskhub-worker' }),
        BreakersModule,
        OutboxModule,
        WebhooksModule,
        ExportsModule,
        HealthModule,
        HttpConventionsModule,
      ],
      controllers: [HealthController, JobsController, RequestLogsController],
      providers: [
        ConsumerStatus,
        RequestLogStore,
        Retention,
        makeCounterProvider({
          name: 'jobs_processed_total',
          help:
            'Job deliveries by queue and outcome: succeeded, retried (failed, to be tried ' +
            'again after a backoff) or dead_lettered (failed for the last time, or unreadable).',
          labelNames: ['queue', 'outcome'],
        }),
      ],
    };
  }
}
