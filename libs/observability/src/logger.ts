import { ConfigError, type AppConfig } from '@app/config';
import type { LoggerService } from '@nestjs/common';
import pino, { Logger } from 'pino';

/**
 * The process's one pino logger: JSON lines on stdout, written in 4 KiB batches rather than a
 * write() per line (the benchmark measured a syscall per access line at ~15% of throughput);
 * pino flushes what is buffered when the process exits. `maxWrite` caps each pending chunk at
 * 8 KiB (sonic-boom's default is 16): sonic-boom measures the byte length of the chunk a line is
 * appended to on every write, so a smaller chunk makes each line cheaper (by about a
 * microsecond, of ~5, in a micro-benchmark here). Request lines carry no headers and no
 * query strings, and error lines no SQL parameters, so nothing needs redacting.
 */
export function createLogger(config: AppConfig, service: string): Logger {
  let logger = roots.get(config);
  if (logger === undefined) {
    logger = pino(
      { level: config.logLevel, base: { service } },
      pino.destination({ dest: 1, sync: false, minLength: 4096, maxWrite: 8192 }),
    );
    roots.set(config, logger);
  }
  latest = logger;
  return logger;
}

/**
 * One logger per configuration: the one Nest is given before the app exists (so that its own
 * start-up lines are JSON too, not its coloured console) is the one the app's providers log to,
 * and one stream writes stdout, never two interleaving their batches.
 */
const roots = new WeakMap<AppConfig, Logger>();
/** The logger made last, for a start-up failure; none yet when the configuration was refused. */
let latest: Logger | undefined;

/**
 * The last line of an app that could not start, as JSON like every other (the lines that explain
 * a crash loop are the ones a log pipeline must not drop), then exit 1. A refused configuration
 * says which variable and why; anything else is logged with its error. pino writes what it has
 * buffered before the process exits.
 */
export function exitOnStartupFailure(service: string, error: unknown): never {
  const logger = latest ?? pino({ base: { service } }, pino.destination({ dest: 1, sync: true }));
  if (error instanceof ConfigError) logger.fatal(error.message);
  else logger.fatal({ err: error }, `${service} failed to start`);
  process.exit(1);
}

type Level = 'info' | 'error' | 'warn' | 'debug' | 'trace' | 'fatal';

/**
 * Nest's LoggerService over pino, for Nest's own lines and `new Logger(context)` in our code.
 *
 * Written here rather than taken from nestjs-pino: nestjs-pino logs requests through pino-http,
 * which on Fastify runs as Nest middleware (@fastify/middie) with an AsyncLocalStorage per
 * request; together they cost about a fifth of the api's throughput in the benchmark. The
 * access line is written by RequestTelemetry instead, and lines about a request carry its id.
 */
export class PinoLoggerService implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  /** Nest calls (message, ...extra, context): an Error or an object becomes fields. */
  private write(level: Level, message: unknown, params: unknown[]): void {
    if (!this.logger.isLevelEnabled(level)) return;
    const rest = [...params];
    const context =
      rest.length > 0 && typeof rest[rest.length - 1] === 'string' ? rest.pop() : undefined;
    const fields: Record<string, unknown> = context === undefined ? {} : { context };
    const [first] = rest;
    if (message instanceof Error) {
      this.logger[level]({ ...fields, err: message }, message.message);
    } else if (typeof message === 'object' && message !== null) {
      this.logger[level]({ ...fields, ...message }, typeof first === 'string' ? first : undefined);
    } else {
      if (typeof first === 'string' && first.includes('\n    at ')) fields.stack = first;
      this.logger[level](fields, String(message));
    }
  }
}
