import { AppConfig } from '@app/config';
import { applyHttpConventions, fastifyOptions, installLeanAsyncBind } from '@app/http';
import { JOB_OUTCOMES, QUEUES, jobServer } from '@app/messaging';
import { NestFactory } from '@nestjs/core';
import { CustomStrategy } from '@nestjs/microservices';
import { getToken } from '@willsoto/nestjs-prometheus';
import type { Counter } from 'prom-client';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { createLogger, PinoLoggerService } from '@app/observability';
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
  await applyHttpConventions(adapter.getInstance(), config);
  const app = await NestFactory.create<NestFastifyApplication>(
    WorkerModule.forRoot(config),
    adapter,
    {
      // Our JSON logger from the first line: with Nest's own until useLogger(), a failure at
      // start-up (a database refusing) was written as coloured text.
      logger: new PinoLoggerService(createLogger(config, 'worker')),
      abortOnError: false,
      bodyParser: false,
    },
  );
  const processed = app.get<Counter<string>>(getToken('jobs_processed_total'));
  const status = app.get(ConsumerStatus);
  for (const queue of Object.values(QUEUES)) {
    // Each outcome a series from the start, at 0: an alert on dead letters sees 0, not nothing.
    for (const outcome of JOB_OUTCOMES) processed.inc({ queue, outcome }, 0);
    status.set(queue, 'disconnected');
    const consumer = app.connectMicroservice<CustomStrategy>(
      {
        strategy: jobServer(config, queue, {
          outcome: (label, outcome) => processed.labels(label, outcome).inc(),
        }),
      },
      { inheritAppConfig: true },
    );
    consumer.status.subscribe((value) => status.set(queue, String(value)));
  }
  return app;
}
