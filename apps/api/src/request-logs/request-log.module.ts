import { AppConfig, APP_CONFIG } from '@app/config';
import { MessagingModule } from '@app/messaging';
import { REQUEST_RECORDER } from '@app/observability';
import { Global, Module } from '@nestjs/common';
import { makeCounterProvider, makeGaugeProvider } from '@willsoto/nestjs-prometheus';
import { RequestLogRecorder } from './request-log.recorder';

/**
 * The request log's producer, handed to libs/observability's request hook as REQUEST_RECORDER
 * (global, so that hook can find it); none when REQUEST_LOG_ENABLED=false.
 */
@Global()
@Module({
  imports: [MessagingModule],
  providers: [
    RequestLogRecorder,
    {
      provide: REQUEST_RECORDER,
      inject: [APP_CONFIG, RequestLogRecorder],
      useFactory: (config: AppConfig, recorder: RequestLogRecorder) =>
        config.requestLog.enabled ? recorder : undefined,
    },
    makeCounterProvider({
      name: 'request_log_dropped_total',
      help: 'Request log entries dropped because REQUEST_LOG_BUFFER_MAX were waiting to be published.',
    }),
    makeGaugeProvider({
      name: 'request_log_pending',
      help: 'Request log entries waiting in this instance to be published, as of its last flush.',
    }),
  ],
  exports: [REQUEST_RECORDER],
})
export class RequestLogModule {}
