import { loadConfig } from '@app/config';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createApiApp } from '../apps/api/src/bootstrap';

/**
 * The api as production builds it (same bootstrap, same global guard, pipe and filter), on this
 * run's fresh database (see global-setup.js). `overrides` are environment variables.
 */
export function startApi(overrides: Record<string, string> = {}): Promise<NestFastifyApplication> {
  return createApiApp(loadConfig(overrides));
}
