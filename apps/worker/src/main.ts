import { loadConfig } from '@app/config';
import { installGracefulShutdown } from '@app/health';
import { disablePretenuring } from '@app/http';
import { exitOnStartupFailure, PinoLoggerService } from '@app/observability';
import { createWorkerApp } from './bootstrap';

async function main(): Promise<void> {
  disablePretenuring();
  const config = loadConfig();
  const app = await createWorkerApp(config);
  const logger = app.get(PinoLoggerService);
  installGracefulShutdown(app, config.shutdown, logger);
  await app.startAllMicroservices();
  await app.listen({ port: config.workerPort, host: config.host });
  logger.log(
    `worker consuming RabbitMQ; health and metrics on http://${config.host}:${config.workerPort}`,
  );
}

main().catch((error: unknown) => exitOnStartupFailure('worker', error));
