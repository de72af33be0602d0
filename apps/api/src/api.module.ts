import { AuthModule } from '@app/auth';
import { CacheModule } from '@app/cache';
import { AppConfig, ConfigModule } from '@app/config';
import { DatabaseModule } from '@app/database';
import { HealthModule, RabbitMqHealthIndicator, RedisHealthIndicator } from '@app/health';
import { HttpConventionsModule } from '@app/http';
import { ObservabilityModule } from '@app/observability';
import { RateLimitModule } from '@app/rate-limit';
import { RedisModule } from '@app/redis';
import { ResilienceModule } from '@app/resilience';
import { DynamicModule, Module } from '@nestjs/common';
import { AdminModule } from './admin/admin.module';
import { ApiKeysModule } from './api-keys/api-keys.module';
import { SignInModule } from './auth/sign-in.module';
import { CategoriesModule } from './categories/categories.module';
import { CommonModule } from './common/common.module';
import { HealthController } from './health/health.controller';
import { JobsModule } from './jobs/jobs.module';
import { RequestLogModule } from './request-logs/request-log.module';
import { TasksModule } from './tasks/tasks.module';
import { UsersModule } from './users/users.module';
import { WebhooksModule } from './webhooks/webhooks.module';

@Module({})
export class ApiModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: ApiModule,
      imports: [
        ConfigModule.forRoot(config),
        ObservabilityModule.forRoot('api'),
        DatabaseModule.forRoot({ applicationName: 'taskhub-api' }),
        RedisModule,
        ResilienceModule,
        CacheModule,
        HealthModule,
        HttpConventionsModule,
        AuthModule,
        // After AuthModule: its guard runs first, so the limiter knows the caller.
        RateLimitModule.forRoot(config),
        RequestLogModule,
        CommonModule,
        SignInModule,
        UsersModule,
        ApiKeysModule,
        CategoriesModule,
        TasksModule,
        JobsModule,
        WebhooksModule,
        AdminModule,
      ],
      controllers: [HealthController],
      providers: [RedisHealthIndicator, RabbitMqHealthIndicator],
    };
  }
}
