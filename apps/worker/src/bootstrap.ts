import { AppConfig } from '@app/config';
import { applyHttpConventions, fastifyOptions, installLeanAsyncBind } from '@app/http';
import { QUEUES, rmqServerOptions } from '@app/messaging';
import { NestFactory } from '@nestjs/core';
import { RmqOptions } from '@nestjs/microservices';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { PinoLoggerService } from '@app/observability';
import { ConsumerStatus } from './jobs/consumer-status';
import { WorkerModule } from './worker.module';

/**
 * The worker: a RabbitMQ consumer (Nest microservice) plus a small HTTP server for /health/* and
 * /metrics. Not started: main.ts starts it, tests too.
 */
export async function createWorkerApp(config: AppConfig): Promise<NestFastifyApplication> {
  // Before Fastify and Nest bind anything: see lean-async-bind.ts.
  installLeanAsyncBind();
  const adapter = new FastifyAdapter(fastifyOptions(config));
  applyHttpConventions(adapter.getInstance());
  const app = await NestFactory.create<NestFastifyApplication>(
    WorkerModule.forRoot(config),
    adapter,
    {
      bufferLogs: true,
      abortOnError: false,
      bodyParser: false,
    },
  );
  app.useLogger(app.get(PinoLoggerService));
  const consumer = app.connectMicroservice<RmqOptions>(rmqServerOptions(config, QUEUES.jobs), {
    inheritAppConfig: true,
  });
  const status = app.get(ConsumerStatus);
  consumer.status.subscribe((value) => status.set(String(value)));
  return app;
}
