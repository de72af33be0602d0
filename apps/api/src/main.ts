import { loadConfig } from '@app/config';
import { installGracefulShutdown } from '@app/health';
import { disablePretenuring } from '@app/http';
import { exitOnStartupFailure, PinoLoggerService } from '@app/observability';
import { createApiApp } from './bootstrap';

async function main(): Promise<void> {
  disablePretenuring();
  const config = loadConfig();
  const app = await createApiApp(config);
  const logger = app.get(PinoLoggerService);
  if (config.jwt.usingDevelopmentSecret) {
    logger.warn(
      'JWT_SECRET is not set: using the development secret. Never do this in production.',
    );
  }
  if (config.webhooks.usingDevelopmentSecretsKey) {
    logger.warn(
      'WEBHOOK_SECRETS_KEY is not set: webhook secrets are encrypted with the development key.',
    );
  }
  installGracefulShutdown(app, config.shutdown, logger);
  await app.listen({ port: config.port, host: config.host });
  logger.log(`api listening on http://${config.host}:${config.port} (docs at /docs)`);
}

main().catch((error: unknown) => exitOnStartupFailure('api', error));
