import { ConfigError, DEVELOPMENT_JWT_SECRET, parseConfig } from './config';

const strong = 'x'.repeat(40);

function errorOf(env: Record<string, string>): string {
  try {
    parseConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('parseConfig', () => {
  it('runs a fresh checkout with no environment: localhost services and the dev secret', () => {
    const config = parseConfig({});
    expect(config.port).toBe(3000);
    expect(config.workerPort).toBe(3001);
    expect(config.database.url).toBe('postgres://postgres@localhost:5432/taskhub');
    expect(config.database.replicaUrls).toEqual([]);
    expect(config.redis.url).toBe('redis://localhost:6379');
    expect(config.rabbitmq.url).toBe('amqp://guest:guest@localhost:5672');
    expect(config.jwt.secret).toBe(DEVELOPMENT_JWT_SECRET);
    expect(config.jwt.usingDevelopmentSecret).toBe(true);
    expect(config.trustProxy).toBe(false);
    expect(config.logLevel).toBe('info');
  });

  it('treats an empty variable as unset', () => {
    expect(parseConfig({ PORT: '', TRUST_PROXY: '' }).port).toBe(3000);
  });

  it.each([
    [{ PORT: 'abc' }, /^Invalid configuration: PORT: .*\(got "abc"\)$/],
    [{ PORT: '70000' }, /^Invalid configuration: PORT: expected at most 65535/],
    [{ DATABASE_URL: 'mysql://x/y' }, /^Invalid configuration: DATABASE_URL: expected a postgres/],
    [
      { DATABASE_REPLICA_URLS: 'postgres://a/b, nope' },
      /^Invalid configuration: DATABASE_REPLICA_URLS/,
    ],
    [{ REDIS_URL: 'http://x' }, /^Invalid configuration: REDIS_URL/],
    [{ LOG_LEVEL: 'loud' }, /^Invalid configuration: LOG_LEVEL/],
    [{ TRUST_PROXY: 'yes' }, /^Invalid configuration: TRUST_PROXY: .*"yes" is neither/],
    [{ TRUST_PROXY: '10.0.0.0/33' }, /^Invalid configuration: TRUST_PROXY/],
  ])('stops on %o with one line naming the variable', (env, message) => {
    const text = errorOf(env);
    expect(text).toMatch(message);
    expect(text).not.toContain('\n');
  });

  it('requires JWT_SECRET in production, and never echoes a secret', () => {
    expect(errorOf({ NODE_ENV: 'production' })).toBe(
      'Invalid configuration: JWT_SECRET: required when NODE_ENV=production',
    );
    const short = errorOf({ JWT_SECRET: 'hunter2' });
    expect(short).toMatch(/^Invalid configuration: JWT_SECRET: expected at least 32/);
    expect(short).not.toContain('hunter2');
    expect(errorOf({ NODE_ENV: 'production', JWT_SECRET: strong })).toBe(
      'Invalid configuration: WEBHOOK_SECRETS_KEY: required when NODE_ENV=production',
    );
    const key = 'w'.repeat(40);
    const config = parseConfig({
      NODE_ENV: 'production',
      JWT_SECRET: strong,
      WEBHOOK_SECRETS_KEY: key,
    });
    expect(config.jwt.secret).toBe(strong);
    expect(config.jwt.usingDevelopmentSecret).toBe(false);
    expect(config.webhooks).toMatchObject({ secretsKey: key, usingDevelopmentSecretsKey: false });
  });

  it('reads the webhook allow-list as lower-case host names', () => {
    expect(
      parseConfig({ WEBHOOK_ALLOW_HOSTS: ' Hooks.Internal ,127.0.0.1,' }).webhooks.allowHosts,
    ).toEqual(['hooks.internal', '127.0.0.1']);
    expect(parseConfig({}).webhooks.allowHosts).toEqual([]);
  });

  it('parses TRUST_PROXY as a hop count or a list of CIDRs', () => {
    expect(parseConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(parseConfig({ TRUST_PROXY: '10.0.0.0/8, 192.168.1.1,::1/128' }).trustProxy).toEqual([
      '10.0.0.0/8',
      '192.168.1.1',
      '::1/128',
    ]);
  });

  it('takes previous JWT secrets for verification after a rotation, never echoing them', () => {
    const old = 'o'.repeat(40);
    expect(parseConfig({ JWT_PREVIOUS_SECRETS: `${old}, ${strong}` }).jwt.previousSecrets).toEqual([
      old,
      strong,
    ]);
    expect(parseConfig({}).jwt.previousSecrets).toEqual([]);
    const text = errorOf({ JWT_PREVIOUS_SECRETS: `${old},short-one` });
    expect(text).toMatch(/^Invalid configuration: JWT_PREVIOUS_SECRETS: expected secrets of/);
    expect(text).not.toContain('short-one');
  });

  it('takes ADMIN_EMAIL and ADMIN_PASSWORD together, never echoing the password', () => {
    expect(
      parseConfig({ ADMIN_EMAIL: ' Root@Example.com ', ADMIN_PASSWORD: 'long enough' }).admin,
    ).toEqual({ email: 'root@example.com', password: 'long enough' });
    expect(parseConfig({}).admin).toBeUndefined();
    expect(errorOf({ ADMIN_EMAIL: 'root@example.com' })).toBe(
      'Invalid configuration: ADMIN_PASSWORD: required with ADMIN_EMAIL',
    );
    expect(errorOf({ ADMIN_PASSWORD: 'long enough' })).toBe(
      'Invalid configuration: ADMIN_EMAIL: required with ADMIN_PASSWORD',
    );
    expect(errorOf({ ADMIN_EMAIL: 'nope', ADMIN_PASSWORD: 'long enough' })).toMatch(
      /^Invalid configuration: ADMIN_EMAIL: expected an email address \(got "nope"\)$/,
    );
    const short = errorOf({ ADMIN_EMAIL: 'root@example.com', ADMIN_PASSWORD: 'hunter2' });
    expect(short).toMatch(/^Invalid configuration: ADMIN_PASSWORD: expected at least 10/);
    expect(short).not.toContain('hunter2');
  });

  it('reads RATE_LIMIT_ENABLED as a boolean, on by default', () => {
    expect(parseConfig({}).rateLimit.enabled).toBe(true);
    expect(parseConfig({ RATE_LIMIT_ENABLED: 'false' }).rateLimit.enabled).toBe(false);
    expect(parseConfig({ RATE_LIMIT_ENABLED: '0' }).rateLimit.enabled).toBe(false);
    expect(parseConfig({ RATE_LIMIT_ENABLED: 'TRUE' }).rateLimit.enabled).toBe(true);
    expect(errorOf({ RATE_LIMIT_ENABLED: 'maybe' })).toMatch(
      /^Invalid configuration: RATE_LIMIT_ENABLED: expected true or false/,
    );
  });

  it('reads the cache settings in ms, with their defaults', () => {
    expect(parseConfig({}).cache).toEqual({
      enabled: true,
      ttlMs: 60_000,
      staleMs: 300_000,
      localTtlMs: 5000,
      localMaxEntries: 10_000,
      localMaxBytes: 64 * 1024 * 1024,
    });
    expect(parseConfig({ CACHE_TTL_SECONDS: '2', CACHE_ENABLED: 'false' }).cache).toMatchObject({
      enabled: false,
      ttlMs: 2000,
    });
    expect(errorOf({ CACHE_TTL_SECONDS: '0' })).toMatch(
      /^Invalid configuration: CACHE_TTL_SECONDS/,
    );
  });

  it('gives the postgres breaker the statement timeout unless it has its own', () => {
    expect(parseConfig({}).breakers.timeoutsMs.postgres).toBe(5000);
    expect(parseConfig({ DATABASE_STATEMENT_TIMEOUT_MS: '800' }).breakers.timeoutsMs.postgres).toBe(
      800,
    );
    expect(
      parseConfig({ DATABASE_STATEMENT_TIMEOUT_MS: '800', BREAKER_POSTGRES_TIMEOUT_MS: '300' })
        .breakers.timeoutsMs.postgres,
    ).toBe(300);
    expect(errorOf({ BREAKER_ERROR_THRESHOLD_PERCENT: '101' })).toMatch(
      /^Invalid configuration: BREAKER_ERROR_THRESHOLD_PERCENT: expected at most 100/,
    );
  });

  it('sheds load past 500 ms of event-loop delay by default; 0 turns it off', () => {
    expect(parseConfig({}).loadShedding.maxEventLoopDelayMs).toBe(500);
    expect(
      parseConfig({ LOAD_SHED_EVENT_LOOP_DELAY_MS: '0' }).loadShedding.maxEventLoopDelayMs,
    ).toBe(0);
  });

  it('bounds every phase of a request, headers within the whole request', () => {
    expect(parseConfig({}).http).toEqual({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      handlerTimeoutMs: 10_000,
    });
    expect(errorOf({ HTTP_HEADERS_TIMEOUT_MS: '20000', HTTP_REQUEST_TIMEOUT_MS: '5000' })).toBe(
      'Invalid configuration: HTTP_HEADERS_TIMEOUT_MS: expected at most HTTP_REQUEST_TIMEOUT_MS (5000) (got "20000")',
    );
  });

  it('migrates at start unless DATABASE_MIGRATE_ON_START says otherwise', () => {
    expect(parseConfig({}).database.migrateOnStart).toBe(true);
    expect(parseConfig({ DATABASE_MIGRATE_ON_START: '' }).database.migrateOnStart).toBe(true);
    expect(parseConfig({ DATABASE_MIGRATE_ON_START: 'false' }).database.migrateOnStart).toBe(false);
    expect(parseConfig({ DATABASE_MIGRATE_ON_START: '0' }).database.migrateOnStart).toBe(false);
    expect(parseConfig({ DATABASE_MIGRATE_ON_START: ' True ' }).database.migrateOnStart).toBe(true);
    expect(errorOf({ DATABASE_MIGRATE_ON_START: 'no' })).toBe(
      'Invalid configuration: DATABASE_MIGRATE_ON_START: expected true or false (got "no")',
    );
  });

  it('splits replica URLs', () => {
    expect(
      parseConfig({ DATABASE_REPLICA_URLS: 'postgres://r1/db, postgres://r2/db' }).database
        .replicaUrls,
    ).toEqual(['postgres://r1/db', 'postgres://r2/db']);
  });
});
