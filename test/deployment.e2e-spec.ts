/**
 * The container deployment (Dockerfile, docker-compose.yml, .dockerignore), checked without
 * Docker: the compose environments are real configurations for @app/config, the apps wait for
 * healthy dependencies they reach by service name, the ports and probes agree with the config,
 * and the image runs the built entry points as a non-root user behind an init. The healthcheck
 * commands are run for real, against a stand-in HTTP server.
 */
import { parseConfig } from '@app/config';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, posix } from 'node:path';
import { parse } from 'yaml';
import { configReads } from './config-reads';

const root = join(__dirname, '..');
const read = (file: string): string => readFileSync(join(root, file), 'utf8');

// ---------------------------------------------------------------------------------------------
// docker-compose.yml as Compose reads it: YAML with merge keys, then ${...} interpolation.

interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, string | number | null> | string[];
  ports?: (string | number | { target: number; published?: string | number })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  stop_grace_period?: string;
}

interface ComposeFile {
  services: Record<string, ComposeService>;
}

const compose = parse(read('docker-compose.yml'), { merge: true }) as ComposeFile;
const APPS = ['api', 'worker'] as const;
type App = (typeof APPS)[number];

function service(name: string): ComposeService {
  const found = compose.services[name];
  if (!found) throw new Error(`docker-compose.yml has no service "${name}"`);
  return found;
}

/**
 * Compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error},
 * ${VAR?error}. A bare ${VAR} that is not set is an error here (Compose would quietly substitute
 * an empty string): every variable must have a default or be required.
 */
function interpolate(value: string, vars: Record<string, string>): string {
  const pattern = /\$\$|\$\{([A-Za-z_]\w*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_]\w*)/g;
  const result = value.replace(
    pattern,
    (whole, braced?: string, operator?: string, argument?: string, bare?: string) => {
      if (whole === '$$') return '$';
      const name = (braced ?? bare) as string;
      const set = Object.hasOwn(vars, name);
      const usable = operator?.startsWith(':') ? set && vars[name] !== '' : set;
      if (usable) return vars[name];
      if (operator === ':-' || operator === '-') return argument ?? '';
      if (operator === ':?' || operator === '?') throw new Error(`${name}: ${argument}`);
      throw new Error(`${name} is not set and has no default`);
    },
  );
  expect(result).not.toContain('${');
  return result;
}

/** A service's environment after interpolation, as the container would see it. */
function environmentOf(name: string, vars: Record<string, string>): Record<string, string> {
  const raw = service(name).environment ?? {};
  expect(Array.isArray(raw)).toBe(false); // the map form keeps names greppable
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof value !== 'string' && typeof value !== 'number') {
      throw new Error(
        `${name}: ${key} must have a string value in docker-compose.yml, not ${JSON.stringify(value)}`,
      );
    }
    env[key] = interpolate(String(value), vars);
  }
  return env;
}

const jwtSecret = randomBytes(32).toString('hex');
const webhookSecretsKey = randomBytes(32).toString('hex');
const defaults = { JWT_SECRET: jwtSecret, WEBHOOK_SECRETS_KEY: webhookSecretsKey };
const overridden = {
  ...defaults,
  POSTGRES_PASSWORD: 'override-postgres-password',
  RABBITMQ_PASSWORD: 'override-rabbitmq-password',
};

function dependencies(name: string): Record<string, string | undefined> {
  const raw = service(name).depends_on ?? {};
  if (Array.isArray(raw)) return Object.fromEntries(raw.map((dep) => [dep, undefined]));
  return Object.fromEntries(Object.entries(raw).map(([dep, spec]) => [dep, spec?.condition]));
}

/** Container ports a service publishes (short "host:container" or long { target } syntax). */
function containerPorts(name: string): number[] {
  return (service(name).ports ?? []).map((port) => {
    if (typeof port === 'object') return Number(port.target);
    const container = String(port).split(':').at(-1) as string;
    return Number(container.split('/')[0]);
  });
}

function healthcheckArgv(name: string): string[] {
  const check = service(name).healthcheck;
  expect(check?.disable).not.toBe(true);
  const test = check?.test;
  if (test === undefined) return [];
  return typeof test === 'string' ? ['CMD-SHELL', test] : test;
}

/** Compose durations: "30s", "1m30s", "1500ms". */
function durationMs(value: string): number {
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)/g)];
  expect(parts.map((part) => part[0]).join('')).toBe(value);
  const unit = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 1e-3, ns: 1e-6 };
  return parts.reduce((total, [, n, u]) => total + Number(n) * unit[u as keyof typeof unit], 0);
}

// ---------------------------------------------------------------------------------------------
// The Dockerfile: instructions (continuations joined, comments dropped), grouped by stage.

interface Instruction {
  keyword: string;
  args: string;
}

function dockerfileStages(text: string): { from: string; name?: string; body: Instruction[] }[] {
  const instructions: Instruction[] = [];
  let pending = '';
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line)) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    if (!full) continue;
    const match = /^(\S+)\s*(.*)$/s.exec(full) as RegExpExecArray;
    instructions.push({ keyword: match[1].toUpperCase(), args: match[2].trim() });
  }
  const stages: { from: string; name?: string; body: Instruction[] }[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [from, as, name] = instruction.args.split(/\s+/);
      stages.push({ from, name: as?.toUpperCase() === 'AS' ? name : undefined, body: [] });
    } else {
      const stage = stages.at(-1);
      if (!stage) throw new Error(`Dockerfile: ${instruction.keyword} before the first FROM`);
      stage.body.push(instruction);
    }
  }
  return stages;
}

/** Exec form (JSON array) only: shell form would put /bin/sh between tini and node. */
function execForm(instruction: Instruction | undefined): string[] {
  expect(instruction?.args.startsWith('[')).toBe(true);
  return JSON.parse((instruction as Instruction).args) as string[];
}

const stages = dockerfileStages(read('Dockerfile'));
const runtime = stages.at(-1) as (typeof stages)[number];
const lastOf = (keyword: string): Instruction | undefined =>
  runtime.body.filter((instruction) => instruction.keyword === keyword).at(-1);

// ---------------------------------------------------------------------------------------------
// Running healthcheck commands against a stand-in server.

async function listen(status: number, paths: string[]): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    paths.push(req.url ?? '');
    res.statusCode = status;
    res.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

const close = (server: Server): Promise<void> =>
  new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

/** A port nothing listens on (taken from the OS, then released). */
async function freePort(): Promise<number> {
  const { server, port } = await listen(200, []);
  await close(server);
  return port;
}

/** Runs a `node ...` healthcheck command; resolves with its exit code. */
function runHealthcheck(argv: string[], env: Record<string, string>): Promise<number | null> {
  expect(argv[0]).toBe('node'); // the image has no curl or wget
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv.slice(1), {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: 'ignore',
      timeout: 15_000,
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code));
  });
}

// =============================================================================================

describe('docker-compose.yml', () => {
  it('requires JWT_SECRET and WEBHOOK_SECRETS_KEY instead of shipping them', () => {
    for (const app of APPS) {
      expect(() => environmentOf(app, {})).toThrow(/JWT_SECRET/);
      expect(() => environmentOf(app, { JWT_SECRET: jwtSecret })).toThrow(/WEBHOOK_SECRETS_KEY/);
    }
  });

  describe.each(APPS)('%s', (app: App) => {
    it.each([
      ['default', defaults],
      ['overridden', overridden],
    ])(
      'has an environment that is a valid production configuration (%s passwords)',
      (_label, vars) => {
        const config = parseConfig(environmentOf(app, vars));
        expect(config.env).toBe('production');
        expect(config.jwt.usingDevelopmentSecret).toBe(false);
        expect(config.jwt.secret).toBe(jwtSecret);
        expect(config.webhooks.usingDevelopmentSecretsKey).toBe(false);
        expect(config.shutdown.drainDelayMs).toBeGreaterThan(0);
      },
    );

    it('sets only variables that the config reads', () => {
      const env = environmentOf(app, defaults);
      const ignored = Object.keys(env).filter((name) => !configReads(env, name));
      expect(ignored).toEqual([]);
    });

    it('reaches its dependencies by service name and starts once they are healthy', () => {
      const env = environmentOf(app, defaults);
      const config = parseConfig(env);
      const urls = [
        ['DATABASE_URL', config.database.url],
        ['DATABASE_REPLICA_URLS', ...config.database.replicaUrls],
        ['REDIS_URL', config.redis.url],
        ['RABBITMQ_URL', config.rabbitmq.url],
      ]
        .filter(([variable]) => variable in env)
        .flatMap(([, ...values]) => values);
      expect(urls.length).toBeGreaterThan(0);
      const hosts = urls.map((url) => new URL(url).hostname);
      const needs = dependencies(app);
      for (const host of hosts) {
        expect(Object.keys(compose.services)).toContain(host); // never localhost in a container
        expect(needs[host]).toBe('service_healthy');
      }
      // The worker only consumes RabbitMQ for now; the api needs the database above all.
      expect(hosts).toContain(app === 'api' ? 'postgres' : 'rabbitmq');
    });

    it('waits only for dependencies that have a healthcheck', () => {
      const needs = dependencies(app);
      expect(Object.keys(needs).length).toBeGreaterThan(0);
      for (const [dependency, condition] of Object.entries(needs)) {
        expect(condition).toBe('service_healthy');
        const argv = healthcheckArgv(dependency);
        expect(['CMD', 'CMD-SHELL']).toContain(argv[0]);
        expect(argv.length).toBeGreaterThan(1);
      }
    });

    it('publishes the port it listens on and probes /health/ready there', async () => {
      const config = parseConfig(environmentOf(app, defaults));
      const port = app === 'api' ? config.port : config.workerPort;
      expect(containerPorts(app)).toEqual([port]);

      const argv = healthcheckArgv(app);
      expect(argv[0]).toBe('CMD');
      const command = argv.slice(1);
      const target = /http:\/\/(?:127\.0\.0\.1|localhost):(\d+)(\/[\w/]*)/.exec(command.join(' '));
      expect(target?.[1]).toBe(String(port));
      expect(target?.[2]).toBe('/health/ready');

      // The same command, pointed at a stand-in: 200 is healthy; 503 and no answer are not.
      const paths: string[] = [];
      const retarget = async (stubPort: number) =>
        runHealthcheck(
          command.map((arg) => arg.replace(`:${port}/`, `:${stubPort}/`)),
          {},
        );
      const ok = await listen(200, paths);
      const draining = await listen(503, paths);
      try {
        expect(await retarget(ok.port)).toBe(0);
        expect(await retarget(draining.port)).toBe(1);
        expect(await retarget(await freePort())).toBe(1);
      } finally {
        await Promise.all([close(ok.server), close(draining.server)]);
      }
      expect(paths).toEqual(['/health/ready', '/health/ready']);
    });

    it('runs the built entry point of the image, with time to shut down cleanly', () => {
      const { build, image, command } = service(app);
      expect(build === '.' || (typeof build === 'object' && build.context === '.')).toBe(true);
      expect(image).toBe(service('api').image); // one image for both
      const argv = command === undefined ? execForm(lastOf('CMD')) : command;
      expect(Array.isArray(argv)).toBe(true);
      expect(argv[0]).toBe('node');
      expect(argv[1]).toBe(`dist/apps/${app}/apps/${app}/src/main.js`);
      expect(existsSync(join(root, argv[1]))).toBe(true); // after `npm run build`

      const { shutdown } = parseConfig(environmentOf(app, defaults));
      const grace = durationMs(service(app).stop_grace_period ?? '10s');
      expect(shutdown.timeoutMs).toBeGreaterThan(shutdown.drainDelayMs);
      expect(grace).toBeGreaterThan(shutdown.timeoutMs);
    });
  });

  it('gives the apps the credentials the postgres and rabbitmq services are created with', () => {
    for (const vars of [defaults, overridden]) {
      const pg = environmentOf('postgres', vars);
      const database = new URL(parseConfig(environmentOf('api', vars)).database.url);
      expect(decodeURIComponent(database.username)).toBe(pg.POSTGRES_USER);
      expect(decodeURIComponent(database.password)).toBe(pg.POSTGRES_PASSWORD);

      const mq = environmentOf('rabbitmq', vars);
      for (const app of APPS) {
        const broker = new URL(parseConfig(environmentOf(app, vars)).rabbitmq.url);
        expect(decodeURIComponent(broker.username)).toBe(mq.RABBITMQ_DEFAULT_USER);
        expect(decodeURIComponent(broker.password)).toBe(mq.RABBITMQ_DEFAULT_PASS);
      }
    }
    expect(environmentOf('postgres', overridden).POSTGRES_PASSWORD).toBe(
      overridden.POSTGRES_PASSWORD,
    );
  });

  it('runs Postgres 15 or newer (the migrations use ON DELETE SET NULL (column))', () => {
    const tag = /^(?:docker\.io\/)?(?:library\/)?postgres:(\d+)/.exec(
      service('postgres').image ?? '',
    );
    expect(Number(tag?.[1])).toBeGreaterThanOrEqual(15);
  });
});

describe('Dockerfile', () => {
  it('builds with npm ci and npm run build, every stage on node:24-bookworm-slim', () => {
    const build = stages.find((stage) =>
      stage.body.some((i) => i.keyword === 'RUN' && /\bnpm run build\b/.test(i.args)),
    );
    expect(build?.body.some((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args))).toBe(true);
    expect(runtime).not.toBe(build);
    // Node 24, the LTS line in support, pinned to its major at least; the same in every stage, so
    // the modules built are the modules run.
    expect(stages.map((stage) => stage.from)).toEqual(stages.map(() => 'node:24-bookworm-slim'));
  });

  it('puts only dist/, production node_modules and package.json in the runtime stage', () => {
    const copies = runtime.body.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD');
    const copied = copies.map((i) => {
      const words = i.args.split(/\s+/).filter((word) => !word.startsWith('--'));
      const from = /--from=(\S+)/.exec(i.args)?.[1];
      return { from, sources: words.slice(0, -1).map((s) => posix.basename(s)) };
    });
    expect(copied.flatMap((c) => c.sources).sort()).toEqual([
      'dist',
      'node_modules',
      'package.json',
    ]);
    expect(copied.every((c) => c.from !== undefined)).toBe(true); // from a stage, never the context

    const modules = copied.find((c) => c.sources.includes('node_modules'));
    const deps = stages.find((stage) => stage.name === modules?.from);
    const prunes = deps?.body.some(
      (i) => i.keyword === 'RUN' && /\bnpm (ci|prune|install)\b[^&;]*--omit=dev/.test(i.args),
    );
    expect(prunes).toBe(true);
  });

  it('runs as its own non-root user, with NODE_ENV=production and tini as PID 1', () => {
    // 10001:10001, by number (Kubernetes' runAsNonRoot can only verify a number), created in the
    // runtime stage as taskhub with no home and no shell.
    expect(lastOf('USER')?.args).toBe('10001:10001');
    const runs = runtime.body.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    expect(runs.some((args) => /\bgroupadd --gid 10001 taskhub\b/.test(args))).toBe(true);
    expect(runs.some((args) => /\buseradd --uid 10001 --gid 10001 .*\btaskhub$/.test(args))).toBe(
      true,
    );
    // The files stay root's and read-only to it: nothing is copied to it or handed over.
    const copies = runtime.body.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD');
    expect(copies.filter((i) => /--chown|--chmod/.test(i.args))).toEqual([]);
    expect(runs.filter((args) => /\bch(own|mod)\b/.test(args))).toEqual([]);

    const env = runtime.body.filter((i) => i.keyword === 'ENV').map((i) => i.args);
    expect(env.some((args) => /(^|\s)NODE_ENV[= ]"?production"?(\s|$)/.test(args))).toBe(true);

    const entrypoint = execForm(lastOf('ENTRYPOINT'));
    expect(posix.basename(entrypoint[0])).toBe('tini');
    expect(entrypoint.at(-1)).toBe('--');
    const installs = runtime.body.some(
      (i) => i.keyword === 'RUN' && /apt-get install\b.*\btini\b/.test(i.args),
    );
    expect(installs).toBe(true);
  });

  it('runs node with the runtime flags npm start and the benchmark use (scripts/runtime.js)', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { NODE_RUNTIME_FLAGS } = require('../scripts/runtime') as {
      NODE_RUNTIME_FLAGS: string[];
    };
    const env = runtime.body.filter((i) => i.keyword === 'ENV').map((i) => i.args);
    expect(env).toContain(`NODE_OPTIONS=${NODE_RUNTIME_FLAGS.join(' ')}`);
  });

  it('runs the built api by default', () => {
    const cmd = execForm(lastOf('CMD'));
    expect(cmd).toEqual(['node', 'dist/apps/api/apps/api/src/main.js']);
    expect(existsSync(join(root, cmd[1]))).toBe(true); // after `npm run build`
    expect(lastOf('WORKDIR')?.args).toBe('/app');
  });

  it('exposes the default PORT and WORKER_PORT, which compose publishes', () => {
    const builtIn = parseConfig({});
    const exposed = lastOf('EXPOSE')
      ?.args.split(/\s+/)
      .map((port) => Number(port.split('/')[0]));
    expect(exposed?.sort()).toEqual([builtIn.port, builtIn.workerPort].sort());
    expect([...containerPorts('api'), ...containerPorts('worker')].sort()).toEqual(exposed?.sort());
  });

  it('has a HEALTHCHECK that needs no curl and finds /health/live on PORT or WORKER_PORT', async () => {
    const healthcheck = lastOf('HEALTHCHECK');
    const argv = execForm(
      healthcheck && { ...healthcheck, args: healthcheck.args.replace(/^(--\S+\s+)*CMD\s+/, '') },
    );
    const paths: string[] = [];
    const live = await listen(200, paths);
    const dead = await listen(500, paths);
    const nobody = await freePort();
    try {
      // The api answers on PORT, the worker on WORKER_PORT; either one alive is healthy.
      expect(await runHealthcheck(argv, { PORT: `${live.port}`, WORKER_PORT: `${nobody}` })).toBe(
        0,
      );
      expect(await runHealthcheck(argv, { PORT: `${nobody}`, WORKER_PORT: `${live.port}` })).toBe(
        0,
      );
      expect(await runHealthcheck(argv, { PORT: `${dead.port}`, WORKER_PORT: `${nobody}` })).toBe(
        1,
      );
      expect(await runHealthcheck(argv, { PORT: `${nobody}`, WORKER_PORT: `${nobody}` })).toBe(1);
    } finally {
      await Promise.all([close(live.server), close(dead.server)]);
    }
    expect(new Set(paths)).toEqual(new Set(['/health/live']));
  });
});

describe('.dockerignore', () => {
  it("keeps the host's node_modules, dist and .env files out of the build context", () => {
    const patterns = read('.dockerignore')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'));
    for (const needed of ['node_modules', 'dist', '.git']) expect(patterns).toContain(needed);
    expect(patterns).toContain('.env*');
  });
});
