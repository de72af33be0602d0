import type { AppConfig } from '@app/config';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Params } from 'nestjs-pino';

/** Never logged: credentials travel in these. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
];

const QUIET_PATHS = ['/health/', '/metrics'];

/** Structured JSON logs (pino): one access line per request, every line with the request id. */
export function loggerParams(config: AppConfig, service: string): Params {
  return {
    pinoHttp: {
      level: config.logLevel,
      base: { service },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      // Probes and scrapes would drown the access log.
      autoLogging: {
        // Middleware sees a mount-relative req.url; originalUrl is the full path.
        ignore: (req: IncomingMessage & { originalUrl?: string }) => {
          const path = req.originalUrl ?? req.url ?? '';
          return QUIET_PATHS.some((prefix) => path.startsWith(prefix));
        },
      },
      customLogLevel: (_req: IncomingMessage, res: ServerResponse, error?: Error) =>
        error || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
      serializers: {
        // Only what helps: no query strings (they may carry search text), no full header dumps.
        req: (req: { id: string; method: string; url: string }) => ({
          id: req.id,
          method: req.method,
          path: req.url.split('?')[0],
        }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
    },
  };
}
