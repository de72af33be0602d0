import { isIP } from 'node:net';
import { z } from 'zod';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Used only outside production, and announced with a warning at start-up. */
export const DEVELOPMENT_JWT_SECRET = 'taskhub-development-secret-do-not-use-in-production';
/** Likewise, for the key that encrypts webhook signing secrets at rest. */
export const DEVELOPMENT_WEBHOOK_SECRETS_KEY = 'taskhub-development-webhook-key-not-for-production';

const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `expected a whole number from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().min(min, `expected at least ${min}`).max(max, `expected at most ${max}`));

const bool = z
  .string()
  .trim()
  .toLowerCase()
  .refine((value) => ['true', 'false', '1', '0'].includes(value), 'expected true or false')
  .transform((value) => value === 'true' || value === '1');

const url = (protocols: string[]) =>
  z
    .string()
    .trim()
    .refine(
      (value) => {
        try {
          return protocols.includes(new URL(value).protocol);
        } catch {
          return false;
        }
      },
      `expected a ${protocols.map((p) => p.replace(':', '://')).join(' or ')} URL`,
    );

const urlList = (protocols: string[]) =>
  z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((item) => item.trim())
        .filter(Boolean),
    )
    .pipe(z.array(url(protocols)));

function isCidrOrAddress(value: string): boolean {
  const [address, bits, extra] = value.split('/');
  if (extra !== undefined || !address) return false;
  const family = isIP(address);
  if (family === 0) return false;
  if (bits === undefined) return true;
  const max = family === 4 ? 32 : 128;
  return /^\d+$/.test(bits) && Number(bits) <= max;
}

/**
 * TRUST_PROXY: empty (trust nobody, X-Forwarded-For is ignored), a hop count, or a
 * comma-separated list of proxy addresses or CIDRs. Anything else is refused rather than guessed.
 */
const trustProxy = z
  .string()
  .trim()
  .transform((value, ctx): false | number | string[] => {
    if (value === '') return false;
    if (/^\d+$/.test(value)) return Number(value);
    const entries = value.split(',').map((item) => item.trim());
    const bad = entries.find((entry) => !isCidrOrAddress(entry));
    if (bad !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a hop count or a list of proxy CIDRs, "${bad}" is neither`,
      });
      return z.NEVER;
    }
    return entries;
  });

/**
 * CORS_ORIGINS: empty (CORS off: browsers on other origins get no CORS headers), or a
 * comma-separated list of origins (`https://app.example.com`), each exactly as a browser sends
 * it in `Origin`: a scheme, a host and an optional port, nothing more.
 */
const corsOrigins = z.string().transform((value, ctx): string[] => {
  const origins = value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
  const bad = origins.find((origin) => {
    try {
      const url = new URL(origin);
      return url.origin !== origin || !['http:', 'https:'].includes(url.protocol);
    } catch {
      return true;
    }
  });
  if (bad !== undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected origins like https://app.example.com, "${bad}" is not one`,
    });
    return z.NEVER;
  }
  return origins;
});

const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().trim().min(1).default('0.0.0.0'),
  PORT: int(1, 65535).default(3000),
  WORKER_PORT: int(1, 65535).default(3001),
  DATABASE_URL: url(['postgres:', 'postgresql:']).default(
    'postgres://postgres@localhost:5432/taskhub',
  ),
  DATABASE_REPLICA_URLS: urlList(['postgres:', 'postgresql:']).default([]),
  DATABASE_POOL_SIZE: int(1, 500).default(10),
  DATABASE_STATEMENT_TIMEOUT_MS: int(100, 600_000).default(5000),
  DATABASE_CONNECT_TIMEOUT_MS: int(100, 600_000).default(5000),
  DATABASE_MIGRATE_ON_START: bool.default(true),
  REDIS_URL: url(['redis:', 'rediss:']).default('redis://localhost:6379'),
  REDIS_KEY_PREFIX: z.string().default('taskhub:'),
  RABBITMQ_URL: url(['amqp:', 'amqps:']).default('amqp://guest:guest@localhost:5672'),
  RABBITMQ_QUEUE_PREFIX: z.string().default('taskhub.'),
  RABBITMQ_PREFETCH: int(1, 10_000).default(20),
  JOB_MAX_ATTEMPTS: int(1, 100).default(5),
  JOB_RETRY_BASE_MS: int(10, 86_400_000).default(1000),
  JOB_RETRY_MAX_MS: int(10, 86_400_000).default(300_000),
  WEBHOOK_SECRETS_KEY: z.string().min(32, 'expected at least 32 characters').optional(),
  WEBHOOK_ALLOW_HOSTS: z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((item) => item.trim().toLowerCase())
        .filter(Boolean),
    )
    .default([]),
  OUTBOX_POLL_MS: int(10, 60_000).default(200),
  OUTBOX_BATCH_SIZE: int(1, 10_000).default(200),
  REQUEST_LOG_ENABLED: bool.default(true),
  REQUEST_LOG_FLUSH_MS: int(10, 60_000).default(1000),
  REQUEST_LOG_BATCH_SIZE: int(1, 10_000).default(500),
  REQUEST_LOG_BUFFER_MAX: int(1, 10_000_000).default(20_000),
  REQUEST_LOG_RETENTION_DAYS: int(1, 3650).default(30),
  EXPORT_FETCH_SIZE: int(1, 10_000).default(1000),
  EXPORT_RESULT_TTL_HOURS: int(1, 8760).default(24),
  JWT_SECRET: z.string().min(32, 'expected at least 32 characters').optional(),
  JWT_PREVIOUS_SECRETS: z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((item) => item.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().min(32, 'expected secrets of at least 32 characters each')))
    .default([]),
  JWT_ISSUER: z.string().trim().min(1).default('taskhub'),
  JWT_AUDIENCE: z.string().trim().min(1).default('taskhub-api'),
  JWT_ACCESS_TTL_SECONDS: int(30, 86_400).default(900),
  REFRESH_TOKEN_TTL_SECONDS: int(60, 31_536_000).default(2_592_000),
  TRUST_PROXY: trustProxy.default(false),
  CORS_ORIGINS: corsOrigins.default([]),
  RATE_LIMIT_ENABLED: bool.default(true),
  CACHE_ENABLED: bool.default(true),
  CACHE_TTL_SECONDS: int(1, 86_400).default(60),
  CACHE_STALE_SECONDS: int(0, 86_400).default(300),
  CACHE_LOCAL_TTL_MS: int(0, 3_600_000).default(5000),
  CACHE_LOCAL_MAX_ENTRIES: int(1, 10_000_000).default(10_000),
  CACHE_LOCAL_MAX_BYTES: int(1024, 17_179_869_184).default(64 * 1024 * 1024),
  BREAKER_ERROR_THRESHOLD_PERCENT: int(1, 100).default(50),
  BREAKER_VOLUME_THRESHOLD: int(1, 100_000).default(10),
  BREAKER_RESET_TIMEOUT_MS: int(100, 600_000).default(10_000),
  BREAKER_ROLLING_WINDOW_MS: int(1000, 600_000).default(10_000),
  BREAKER_POSTGRES_TIMEOUT_MS: int(50, 600_000).optional(),
  BREAKER_REDIS_TIMEOUT_MS: int(10, 600_000).default(500),
  BREAKER_RABBITMQ_TIMEOUT_MS: int(50, 600_000).default(2000),
  BREAKER_WEBHOOK_TIMEOUT_MS: int(100, 600_000).default(10_000),
  LOAD_SHED_EVENT_LOOP_DELAY_MS: int(0, 60_000).default(500),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  ADMIN_EMAIL: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.email('expected an email address'))
    .optional(),
  ADMIN_PASSWORD: z.string().min(10, 'expected at least 10 characters').max(128).optional(),
  HTTP_HEADERS_TIMEOUT_MS: int(100, 600_000).default(10_000),
  HTTP_REQUEST_TIMEOUT_MS: int(100, 3_600_000).default(30_000),
  HTTP_HANDLER_TIMEOUT_MS: int(100, 3_600_000).default(10_000),
  SHUTDOWN_DRAIN_DELAY_MS: int(0, 60_000).default(0),
  SHUTDOWN_TIMEOUT_MS: int(1000, 120_000).default(25_000),
});

export type LogLevel = (typeof LOG_LEVELS)[number];

export interface AppConfig {
  env: 'development' | 'production' | 'test';
  host: string;
  port: number;
  workerPort: number;
  database: {
    url: string;
    replicaUrls: string[];
    poolSize: number;
    statementTimeoutMs: number;
    connectTimeoutMs: number;
    /**
     * At start, the api and the worker create the database if it is missing and apply pending
     * migrations (under an advisory lock). When false they do neither, and exit at start while
     * the database is missing or a migration this build knows is not applied: the schema is then
     * the business of `migrate.js run`, with a role that may change it (README "Database and
     * migrations").
     */
    migrateOnStart: boolean;
  };
  redis: { url: string; keyPrefix: string };
  rabbitmq: { url: string; queuePrefix: string; prefetch: number };
  /**
   * How a job that failed is tried again: attempt n + 1 waits base * 2^(n - 1) ms (at most max,
   * less a random part of up to half), and after maxAttempts the job is dead-lettered.
   */
  jobs: { maxAttempts: number; retryBaseMs: number; retryMaxMs: number };
  webhooks: {
    /** Encrypts the signing secrets at rest (they must be read back to sign). */
    secretsKey: string;
    usingDevelopmentSecretsKey: boolean;
    /** Hosts (names or addresses) that may be targets although loopback or private. */
    allowHosts: string[];
  };
  /** The outbox relay: how often it looks for pending rows, and how many it takes at a time. */
  outbox: { pollMs: number; batchSize: number };
  /**
   * The request log: each api instance keeps at most bufferMax entries waiting (more are dropped
   * and counted), and publishes them in batches of batchSize, or every flushMs; the worker keeps
   * retentionDays of daily partitions.
   */
  requestLog: {
    enabled: boolean;
    flushMs: number;
    batchSize: number;
    bufferMax: number;
    retentionDays: number;
  };
  /**
   * Task exports: the worker reads fetchSize rows at a time from its cursor (and records its
   * progress after each), and a finished job and its file are kept resultTtlHours.
   */
  exports: { fetchSize: number; resultTtlHours: number };
  jwt: {
    /** Signs new tokens, and verifies them. */
    secret: string;
    /** Verify tokens signed before a rotation, until they expire; never sign. */
    previousSecrets: string[];
    /** True when JWT_SECRET was not set and the development secret is in use. */
    usingDevelopmentSecret: boolean;
    issuer: string;
    audience: string;
    accessTtlSeconds: number;
    refreshTtlSeconds: number;
  };
  /** false: X-Forwarded-For is ignored. A number: hops to trust. A list: trusted proxy CIDRs. */
  trustProxy: false | number | string[];
  /** The browser origins allowed to call the api across origins; none: CORS is off. */
  cors: { origins: string[] };
  /** Off only to measure what the limiter costs, or in an emergency. */
  rateLimit: { enabled: boolean };
  /** The read cache (CONTRACT §7); off only to measure what it saves. Times in ms. */
  cache: {
    enabled: boolean;
    /** How long a value is fresh in Redis (the shared level). */
    ttlMs: number;
    /** How long past that a value may still be served when loading it fails. */
    staleMs: number;
    /** How long a value is fresh in process (at most ttlMs after it was loaded). */
    localTtlMs: number;
    localMaxEntries: number;
    localMaxBytes: number;
  };
  /**
   * Circuit breakers (libs/resilience): when one opens, how long it stays open, and each
   * dependency's timeout. The rolling window is split into 10 buckets.
   */
  breakers: {
    errorThresholdPercentage: number;
    volumeThreshold: number;
    resetTimeoutMs: number;
    rollingWindowMs: number;
    timeoutsMs: { postgres: number; redis: number; rabbitmq: number; webhook: number };
  };
  /**
   * Load shedding: past this mean event-loop delay (ms, sampled every 250 ms), new requests get
   * 503 before any work. 0 turns it off.
   */
  loadShedding: { maxEventLoopDelayMs: number };
  logLevel: LogLevel;
  /**
   * Every phase of a request is bounded (ms): its headers, the whole request (headers and body)
   * arriving, then the handler until the reply starts.
   */
  http: { headersTimeoutMs: number; requestTimeoutMs: number; handlerTimeoutMs: number };
  /** The administrator ensured at start-up (ADMIN_EMAIL and ADMIN_PASSWORD, both or neither). */
  admin: { email: string; password: string } | undefined;
  shutdown: { drainDelayMs: number; timeoutMs: number };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

/** Empty strings mean "not set", so `FOO=` in a shell falls back to the default. */
function withoutEmpty(env: Env): Env {
  const result: Env = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && value !== '') result[key] = value;
  }
  return result;
}

/**
 * Validates the environment once into a typed object. Throws a ConfigError whose message is one
 * line naming the first bad variable, so a process that cannot start says exactly why.
 */
export function parseConfig(env: Env): AppConfig {
  const parsed = schema.safeParse(withoutEmpty(env));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue?.path[0] ?? 'environment');
    const got = env[name];
    const shown = /SECRET|PASSWORD/.test(name) || got === undefined ? '' : ` (got "${got}")`;
    throw new ConfigError(`Invalid configuration: ${name}: ${issue?.message ?? 'invalid'}${shown}`);
  }
  const e = parsed.data;
  if (e.HTTP_HEADERS_TIMEOUT_MS > e.HTTP_REQUEST_TIMEOUT_MS) {
    // Node's http server refuses this too, less clearly: the headers are part of the request.
    throw new ConfigError(
      `Invalid configuration: HTTP_HEADERS_TIMEOUT_MS: expected at most HTTP_REQUEST_TIMEOUT_MS (${e.HTTP_REQUEST_TIMEOUT_MS}) (got "${e.HTTP_HEADERS_TIMEOUT_MS}")`,
    );
  }
  for (const name of ['JWT_SECRET', 'WEBHOOK_SECRETS_KEY'] as const) {
    if (e.NODE_ENV === 'production' && e[name] === undefined) {
      throw new ConfigError(`Invalid configuration: ${name}: required when NODE_ENV=production`);
    }
  }
  if ((e.ADMIN_EMAIL === undefined) !== (e.ADMIN_PASSWORD === undefined)) {
    const missing = e.ADMIN_EMAIL === undefined ? 'ADMIN_EMAIL' : 'ADMIN_PASSWORD';
    throw new ConfigError(
      `Invalid configuration: ${missing}: required with ${missing === 'ADMIN_EMAIL' ? 'ADMIN_PASSWORD' : 'ADMIN_EMAIL'}`,
    );
  }
  return {
    env: e.NODE_ENV,
    host: e.HOST,
    port: e.PORT,
    workerPort: e.WORKER_PORT,
    database: {
      url: e.DATABASE_URL,
      replicaUrls: e.DATABASE_REPLICA_URLS,
      poolSize: e.DATABASE_POOL_SIZE,
      statementTimeoutMs: e.DATABASE_STATEMENT_TIMEOUT_MS,
      connectTimeoutMs: e.DATABASE_CONNECT_TIMEOUT_MS,
      migrateOnStart: e.DATABASE_MIGRATE_ON_START,
    },
    redis: { url: e.REDIS_URL, keyPrefix: e.REDIS_KEY_PREFIX },
    rabbitmq: {
      url: e.RABBITMQ_URL,
      queuePrefix: e.RABBITMQ_QUEUE_PREFIX,
      prefetch: e.RABBITMQ_PREFETCH,
    },
    jobs: {
      maxAttempts: e.JOB_MAX_ATTEMPTS,
      retryBaseMs: e.JOB_RETRY_BASE_MS,
      retryMaxMs: e.JOB_RETRY_MAX_MS,
    },
    webhooks: {
      secretsKey: e.WEBHOOK_SECRETS_KEY ?? DEVELOPMENT_WEBHOOK_SECRETS_KEY,
      usingDevelopmentSecretsKey: e.WEBHOOK_SECRETS_KEY === undefined,
      allowHosts: e.WEBHOOK_ALLOW_HOSTS,
    },
    outbox: { pollMs: e.OUTBOX_POLL_MS, batchSize: e.OUTBOX_BATCH_SIZE },
    requestLog: {
      enabled: e.REQUEST_LOG_ENABLED,
      flushMs: e.REQUEST_LOG_FLUSH_MS,
      batchSize: e.REQUEST_LOG_BATCH_SIZE,
      bufferMax: e.REQUEST_LOG_BUFFER_MAX,
      retentionDays: e.REQUEST_LOG_RETENTION_DAYS,
    },
    exports: { fetchSize: e.EXPORT_FETCH_SIZE, resultTtlHours: e.EXPORT_RESULT_TTL_HOURS },
    jwt: {
      secret: e.JWT_SECRET ?? DEVELOPMENT_JWT_SECRET,
      previousSecrets: e.JWT_PREVIOUS_SECRETS,
      usingDevelopmentSecret: e.JWT_SECRET === undefined,
      issuer: e.JWT_ISSUER,
      audience: e.JWT_AUDIENCE,
      accessTtlSeconds: e.JWT_ACCESS_TTL_SECONDS,
      refreshTtlSeconds: e.REFRESH_TOKEN_TTL_SECONDS,
    },
    trustProxy: e.TRUST_PROXY,
    cors: { origins: e.CORS_ORIGINS },
    rateLimit: { enabled: e.RATE_LIMIT_ENABLED },
    cache: {
      enabled: e.CACHE_ENABLED,
      ttlMs: e.CACHE_TTL_SECONDS * 1000,
      staleMs: e.CACHE_STALE_SECONDS * 1000,
      localTtlMs: e.CACHE_LOCAL_TTL_MS,
      localMaxEntries: e.CACHE_LOCAL_MAX_ENTRIES,
      localMaxBytes: e.CACHE_LOCAL_MAX_BYTES,
    },
    breakers: {
      errorThresholdPercentage: e.BREAKER_ERROR_THRESHOLD_PERCENT,
      volumeThreshold: e.BREAKER_VOLUME_THRESHOLD,
      resetTimeoutMs: e.BREAKER_RESET_TIMEOUT_MS,
      rollingWindowMs: e.BREAKER_ROLLING_WINDOW_MS,
      timeoutsMs: {
        // Postgres's own statement_timeout ends the work at the same moment the breaker stops
        // waiting for it.
        postgres: e.BREAKER_POSTGRES_TIMEOUT_MS ?? e.DATABASE_STATEMENT_TIMEOUT_MS,
        redis: e.BREAKER_REDIS_TIMEOUT_MS,
        rabbitmq: e.BREAKER_RABBITMQ_TIMEOUT_MS,
        webhook: e.BREAKER_WEBHOOK_TIMEOUT_MS,
      },
    },
    loadShedding: { maxEventLoopDelayMs: e.LOAD_SHED_EVENT_LOOP_DELAY_MS },
    logLevel: e.LOG_LEVEL,
    http: {
      headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
      handlerTimeoutMs: e.HTTP_HANDLER_TIMEOUT_MS,
    },
    admin:
      e.ADMIN_EMAIL !== undefined && e.ADMIN_PASSWORD !== undefined
        ? { email: e.ADMIN_EMAIL, password: e.ADMIN_PASSWORD }
        : undefined,
    shutdown: { drainDelayMs: e.SHUTDOWN_DRAIN_DELAY_MS, timeoutMs: e.SHUTDOWN_TIMEOUT_MS },
  };
}

/** The one place that reads process.env; overrides win (tests and tools use them). */
export function loadConfig(overrides: Env = {}): AppConfig {
  return parseConfig({ ...process.env, ...overrides });
}
