import { AppConfig } from '@app/config';
import { applyHttpConventions, fastifyOptions, installLeanAsyncBind } from '@app/http';
import { RequestMethod } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { createLogger, PinoLoggerService } from '@app/observability';
import { shedLoad } from '@app/resilience';
import { ApiModule } from './api.module';
import { setupSwagger } from './swagger';

/**
 * Builds the api exactly as production runs it; main.ts listens on it, the tests inject into it.
 * Returns an initialised app: the database exists and is migrated.
 */
export async function createApiApp(config: AppConfig): Promise<NestFastifyApplication> {
  // Before Fastify and Nest bind anything: see lean-async-bind.ts.
  installLeanAsyncBind();
  const adapter = new FastifyAdapter(fastifyOptions(config));
  await applyHttpConventions(adapter.getInstance(), config);
  shedLoad(adapter.getInstance(), config);
  const app = await NestFactory.create<NestFastifyApplication>(ApiModule.forRoot(config), adapter, {
    // Our JSON logger from the first line: with Nest's own until useLogger(), a failure at
    // start-up (a database refusing) was written as coloured text.
    logger: new PinoLoggerService(createLogger(config, 'api')),
    abortOnError: false,
    // Body parsing is set up by applyHttpConventions (JSON only, with our error codes).
    bodyParser: false,
  });
  app.setGlobalPrefix('v1', {
    exclude: [
      { path: 'health/live', method: RequestMethod.GET },
      { path: 'health/ready', method: RequestMethod.GET },
      { path: 'metrics', method: RequestMethod.GET },
    ],
  });
  setupSwagger(app);
  await app.init();
  return app;
}
