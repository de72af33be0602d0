/**
 * The container deployment (Dockerfile, docker-compose.yml, nginx/, .dockerignore), checked
 * without a Docker engine: the compose environments are real configurations for @app/config, the
 * apps wait for healthy dependencies they reach by service name, the ports and probes agree with
 * the config, every published port stays on 127.0.0.1, and the image runs the built entry points
 * as a non-root user behind an init. Compose itself (`docker compose config`, or Debian's
 * `docker-compose`) reads the file, nginx (`nginx -T`) reads the load balancer's configuration as
 * the nginx image renders it, and the healthcheck commands run against a stand-in HTTP server.
 * Neither compose nor nginx is optional: .ci/run installs both when they are missing.
 */
import { parseConfig } from '@app/config';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join, posix, resolve } from 'node:path';
import { minVersion, satisfies, validRange } from 'semver';
import { parse } from 'yaml';
import { configReads } from './config-reads';

const root = join(__dirname, '..');
const read = (file: string): string => readFileSync(join(root, file), 'utf8');

// ---------------------------------------------------------------------------------------------
// docker-compose.yml as Compose reads it: YAML with merge keys, then ${...} interpolation.

type ComposePort =
  string | number | { target: number | string; published?: string | number; host_ip?: string };

interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, string | number | null> | string[];
  ports?: ComposePort[];
  volumes?: (string | { type?: string; source?: string; target?: string; read_only?: boolean })[];
  tmpfs?: string | string[];
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

/**
 * The services each app reaches, by the variable that says where. The api: Postgres, Redis
 * (cache, rate limits, invalidation) and RabbitMQ. The worker: Postgres (outbox relay, exports,
 * webhook deliveries, request log) and RabbitMQ; it has no Redis client. Each must be set in
 * compose: the config's defaults point at localhost, which in a container is the app itself.
 */
const NEEDS: Record<App, Record<string, string>> = {
  api: { DATABASE_URL: 'postgres', REDIS_URL: 'redis', RABBITMQ_URL: 'rabbitmq' },
  worker: { DATABASE_URL: 'postgres', RABBITMQ_URL: 'rabbitmq' },
};

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

interface Published {
  /** The host address the port is bound to; "" is every interface. */
  hostIp: string;
  published: number | undefined;
  target: number;
}

/** One ports entry, short ("[ip:][host:]container[/proto]") or long ({ target, ... }) syntax. */
function publishedPort(port: ComposePort): Published {
  if (typeof port === 'object') {
    const published = port.published === undefined ? undefined : Number(port.published);
    return { hostIp: port.host_ip ?? '', published, target: Number(port.target) };
  }
  const parts = String(port).split('/')[0].split(':');
  const target = Number(parts.pop());
  const published = parts.length > 0 ? Number(parts.pop()) : undefined;
  return { hostIp: parts.join(':'), published, target };
}

/** The ports a service publishes, after interpolation. */
function publishedPorts(name: string, vars: Record<string, string>): Published[] {
  return (service(name).ports ?? []).map((port) =>
    publishedPort(typeof port === 'string' ? interpolate(port, vars) : port),
  );
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
// Compose itself: `docker compose` if this machine has the plugin, else Debian's docker-compose
// (1.29). `config` needs no engine: it reads, interpolates and validates the file, and prints it.

function composeCommand(): string[] {
  for (const argv of [['docker', 'compose'], ['docker-compose']]) {
    const probe = spawnSync(argv[0], [...argv.slice(1), 'version'], { timeout: 30_000 });
    if (probe.status === 0) return argv;
  }
  throw new Error(
    'neither `docker compose` nor `docker-compose` runs here: install one (.ci/run does: apt-get install docker-compose)',
  );
}

interface ComposeRun {
  status: number | null;
  output: string;
  config?: ComposeFile;
}

/**
 * `config` with exactly `vars` for an environment: neither the caller's environment nor a .env
 * file beside docker-compose.yml (compose reads one by default) can fill in a variable.
 */
function composeConfig(command: string[], vars: Record<string, string>): ComposeRun {
  const dir = mkdtempSync(join(tmpdir(), 'taskhub-compose-'));
  try {
    const envFile = join(dir, 'empty.env');
    writeFileSync(envFile, '');
    const args = ['--project-directory', root, '-f', join(root, 'docker-compose.yml')];
    const run = spawnSync(
      command[0],
      [...command.slice(1), ...args, '--env-file', envFile, 'config'],
      {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', HOME: dir, ...vars },
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    const config = run.status === 0 ? (parse(run.stdout) as ComposeFile) : undefined;
    return { status: run.status, output: `${run.stdout}${run.stderr}`, config };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// nginx: the template, rendered as the nginx image renders /etc/nginx/templates/*.template, and
// the upstream file compose mounts beside nginx.conf.

const NGINX_TEMPLATE = 'nginx/taskhub.conf.template';
const NGINX_UPSTREAM = 'nginx/taskhub-upstream.compose.conf';

/** The compose upstream file's one `server` line. */
function upstreamServer(): { host: string; port: number; parameters: string[] } {
  const servers = [...read(NGINX_UPSTREAM).matchAll(/^\s*server\s+([^;]+);/gm)];
  expect(servers).toHaveLength(1);
  const [address, ...parameters] = servers[0][1].trim().split(/\s+/);
  const [host, port] = address.split(':');
  return { host, port: Number(port), parameters };
}

/**
 * The image's 20-envsubst-on-templates.sh: `envsubst` of the container's variables whose names
 * NGINX_ENVSUBST_FILTER matches (an awk regular expression; all of them when it is unset), in
 * their $NAME and ${NAME} forms; any other $word is left for nginx.
 */
function renderTemplate(template: string, env: Record<string, string>): string {
  const filter = new RegExp(env.NGINX_ENVSUBST_FILTER ?? '');
  return template.replace(/\$\{([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)/g, (whole, braced, bare) => {
    const name = (braced ?? bare) as string;
    return Object.hasOwn(env, name) && filter.test(name) ? env[name] : whole;
  });
}

function nginxBinary(): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  const found = dirs.map((dir) => join(dir, 'nginx')).find((file) => existsSync(file));
  if (!found)
    throw new Error('nginx is not installed: install it (.ci/run does: apt-get install nginx)');
  return found;
}

/** "1.22.1" → 1022001, comparable. */
const versionNumber = (version: string): number =>
  version
    .split('.')
    .map(Number)
    .reduce((total, part, index) => total + part * 1000 ** (2 - index), 0);

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
      const urls: Record<string, string[]> = {
        DATABASE_URL: [config.database.url],
        DATABASE_REPLICA_URLS: config.database.replicaUrls,
        REDIS_URL: [config.redis.url],
        RABBITMQ_URL: [config.rabbitmq.url],
      };
      // Every service it needs is set, to the compose service (never localhost in a container)...
      for (const [variable, host] of Object.entries(NEEDS[app])) {
        expect(env[variable]).toBeDefined();
        expect(urls[variable].map((url) => new URL(url).hostname)).toEqual([host]);
      }
      // ...and whatever else it is given is a compose service too, and all are waited for.
      const hosts = Object.keys(urls)
        .filter((variable) => variable in env)
        .flatMap((variable) => urls[variable].map((url) => new URL(url).hostname));
      const needs = dependencies(app);
      for (const host of hosts) {
        expect(Object.keys(compose.services)).toContain(host);
        expect(needs[host]).toBe('service_healthy');
      }
      expect(Object.keys(needs).sort()).toEqual([...new Set(hosts)].sort());
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

    it('probes /health/ready on the port it listens on', async () => {
      const config = parseConfig(environmentOf(app, defaults));
      const port = app === 'api' ? config.port : config.workerPort;

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

  it('publishes the worker on its port, and the api through nginx only, so that it scales', () => {
    const worker = parseConfig(environmentOf('worker', defaults));
    expect(publishedPorts('worker', defaults).map((port) => port.target)).toEqual([
      worker.workerPort,
    ]);
    // `docker compose up --scale api=3`: a fixed host port would collide from the second on.
    expect(service('api').ports ?? []).toEqual([]);
    const api = parseConfig(environmentOf('api', defaults));
    expect(dependencies('nginx')).toEqual({ api: 'service_healthy' });
    expect(upstreamServer().port).toBe(api.port);
  });

  it('has the api trust exactly the one proxy in front of it (nginx)', () => {
    expect(parseConfig(environmentOf('api', defaults)).trustProxy).toBe(1);
  });

  it('binds every published port to 127.0.0.1 unless TASKHUB_BIND says otherwise', () => {
    const all = (vars: Record<string, string>) =>
      Object.keys(compose.services).flatMap((name) => publishedPorts(name, vars));
    expect(all(defaults).length).toBeGreaterThanOrEqual(3); // nginx, the worker, RabbitMQ's UI
    for (const port of all(defaults)) {
      expect(port).toEqual({ hostIp: '127.0.0.1', published: port.target, target: port.target });
    }
    for (const port of all({ ...defaults, TASKHUB_BIND: '0.0.0.0' })) {
      expect(port.hostIp).toBe('0.0.0.0');
    }
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

describe('docker-compose.yml read by compose', () => {
  const command = composeCommand();
  let run: ComposeRun;
  beforeAll(() => {
    run = composeConfig(command, defaults);
  });

  it(`is valid for ${command.join(' ')} with the required variables set`, () => {
    expect(run.output).not.toMatch(/warn/i); // e.g. a variable compose found unset
    expect(run.status).toBe(0);
    expect(Object.keys(run.config?.services ?? {}).sort()).toEqual(
      Object.keys(compose.services).sort(),
    );
  });

  it('fails without JWT_SECRET or WEBHOOK_SECRETS_KEY, naming the one missing', () => {
    const noJwt = composeConfig(command, { WEBHOOK_SECRETS_KEY: webhookSecretsKey });
    expect(noJwt.status).not.toBe(0);
    expect(noJwt.output).toMatch(/set JWT_SECRET to a random string/);
    const noKey = composeConfig(command, { JWT_SECRET: jwtSecret });
    expect(noKey.status).not.toBe(0);
    expect(noKey.output).toMatch(/set WEBHOOK_SECRETS_KEY to a random string/);
  });

  it('gives each service the environment this spec checks (the same interpolation)', () => {
    for (const vars of [defaults, overridden]) {
      const services = (vars === defaults ? run : composeConfig(command, vars)).config?.services;
      for (const name of Object.keys(compose.services)) {
        const env = Object.entries(services?.[name].environment ?? {});
        expect(Object.fromEntries(env.map(([key, value]) => [key, String(value)]))).toEqual(
          environmentOf(name, vars),
        );
      }
    }
  });

  it('publishes every port on 127.0.0.1, or on TASKHUB_BIND', () => {
    const hosts = (config: ComposeFile | undefined) =>
      Object.values(config?.services ?? {}).flatMap((s) =>
        (s.ports ?? []).map((port) => publishedPort(port).hostIp),
      );
    expect(hosts(run.config).length).toBeGreaterThanOrEqual(3); // nginx, worker, RabbitMQ's UI
    expect(new Set(hosts(run.config))).toEqual(new Set(['127.0.0.1']));
    const wide = composeConfig(command, { ...defaults, TASKHUB_BIND: '0.0.0.0' });
    expect(hosts(wide.config)).toEqual(hosts(run.config).map(() => '0.0.0.0'));
  });
});

describe('nginx in front of the api', () => {
  const nginx = service('nginx');
  const env = (): Record<string, string> => environmentOf('nginx', defaults);

  it('runs a pinned nginx image new enough for the upstream file (resolve: 1.27.3)', () => {
    const tag = /^(?:docker\.io\/)?(?:library\/)?nginx:(\d+\.\d+(?:\.\d+)?)-alpine$/.exec(
      nginx.image ?? '',
    );
    expect(tag).not.toBeNull(); // a version, never latest
    expect(versionNumber((tag as RegExpExecArray)[1])).toBeGreaterThanOrEqual(
      versionNumber('1.27.3'),
    );
  });

  it('mounts the template and the upstream file where the image and the template expect them', () => {
    const volumes = (nginx.volumes ?? []).map((volume) => {
      if (typeof volume !== 'string') throw new Error('nginx: volumes in the short syntax');
      const [source, target, mode] = volume.split(':');
      expect(existsSync(resolve(root, source))).toBe(true);
      return { source: posix.normalize(source), target, mode };
    });
    expect(volumes).toEqual([
      { source: NGINX_TEMPLATE, target: '/etc/nginx/templates/taskhub.conf.template', mode: 'ro' },
      // `include taskhub-upstream.conf` is relative to nginx.conf's directory, /etc/nginx.
      { source: NGINX_UPSTREAM, target: '/etc/nginx/taskhub-upstream.conf', mode: 'ro' },
    ]);
    expect(read(NGINX_TEMPLATE)).toMatch(/^\s*include taskhub-upstream\.conf;/m);
    // The rendered file's directory is a fresh tmpfs: the image's default.conf (a welcome page
    // on port 80) is not there to be served.
    expect(env().NGINX_ENVSUBST_OUTPUT_DIR).toBeUndefined(); // the default, /etc/nginx/conf.d
    expect([nginx.tmpfs ?? []].flat()).toEqual(['/etc/nginx/conf.d']);
  });

  it('substitutes only TASKHUB_LISTEN, the port nginx publishes', () => {
    const template = read(NGINX_TEMPLATE);
    const rendered = renderTemplate(template, env());
    expect(rendered).toBe(template.replaceAll('${TASKHUB_LISTEN}', env().TASKHUB_LISTEN));
    // nginx's own variables, untouched even where a container variable of that name exists.
    const nginxVariables = [...template.matchAll(/\$([a-z_]\w*)/g)].map((m) => m[1]);
    expect(nginxVariables.length).toBeGreaterThan(3);
    const withClashes = { ...env(), ...Object.fromEntries(nginxVariables.map((n) => [n, 'X'])) };
    expect(renderTemplate(template, withClashes)).toBe(rendered);

    const listen = [...rendered.matchAll(/^\s*listen\s+([^;]+);/gm)].map((m) => m[1]);
    expect(listen).toEqual([env().TASKHUB_LISTEN]);
    expect(publishedPorts('nginx', defaults)).toEqual([
      { hostIp: '127.0.0.1', published: 8080, target: Number(env().TASKHUB_LISTEN) },
    ]);
  });

  it("balances over the api service, found again through Docker's DNS as it scales", () => {
    const server = upstreamServer();
    expect(server.host).toBe('api');
    expect(server.parameters).toContain('resolve');
    expect(read(NGINX_UPSTREAM)).toMatch(/^\s*resolver 127\.0\.0\.11\b/m); // Docker's DNS
  });

  it('passes nginx -T as the image would run it (minus 1.27.3-only parameters on an older nginx)', () => {
    const bin = nginxBinary();
    const versionRun = spawnSync(bin, ['-v'], { encoding: 'utf8' });
    const version = /nginx\/(\d+\.\d+\.\d+)/.exec(versionRun.stderr)?.[1] ?? '0.0.0';
    let upstream = read(NGINX_UPSTREAM);
    if (versionNumber(version) < versionNumber('1.27.3')) {
      // Debian 12's nginx is 1.22: it knows neither `resolver` in an upstream block nor `resolve`
      // on a server, and would look `api` up now, which only Docker's DNS can answer. So the
      // resolver line goes, and the server becomes a loopback address with the same parameters:
      // everything else in both files is checked as written.
      upstream = upstream
        .replace(/^\s*resolver\s[^;]*;\s*$/m, '')
        .replace(/\bapi:(\d+) resolve\b/, '127.0.0.1:$1');
      expect(upstream.replace(/#.*$/gm, '')).not.toMatch(/\bresolve|\bapi:/);
    }
    const dir = mkdtempSync(join(tmpdir(), 'taskhub-nginx-'));
    try {
      // /etc/nginx as the image has it at start: nginx.conf including conf.d/*.conf in http,
      // the rendered template in conf.d, the upstream file beside nginx.conf.
      mkdirSync(join(dir, 'conf.d'));
      mkdirSync(join(dir, 'temp'));
      writeFileSync(
        join(dir, 'conf.d', 'taskhub.conf'),
        renderTemplate(read(NGINX_TEMPLATE), env()),
      );
      writeFileSync(join(dir, 'taskhub-upstream.conf'), upstream);
      writeFileSync(
        join(dir, 'nginx.conf'),
        [
          'pid nginx.pid;',
          'error_log stderr;',
          'events {}',
          'http {',
          '  client_body_temp_path temp/body;',
          '  proxy_temp_path temp/proxy;',
          '  fastcgi_temp_path temp/fastcgi;',
          '  uwsgi_temp_path temp/uwsgi;',
          '  scgi_temp_path temp/scgi;',
          '  include conf.d/*.conf;',
          '}',
          '',
        ].join('\n'),
      );
      const test = spawnSync(
        bin,
        ['-T', '-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-e', 'stderr'],
        { encoding: 'utf8', timeout: 30_000 },
      );
      expect(test.stderr).toMatch(/test is successful/);
      expect(test.status).toBe(0);
      // Both files were read, not just a main config that matched nothing.
      expect(test.stdout).toContain(`# configuration file ${join(dir, 'conf.d', 'taskhub.conf')}:`);
      expect(test.stdout).toContain(`# configuration file ${join(dir, 'taskhub-upstream.conf')}:`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('package.json engines', () => {
  const root = resolve(__dirname, '..');
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
  const ours = String(manifest.engines.node);
  /** The oldest version of each Node line we say we run on. */
  const oldest = ours.split('||').map((range) => minVersion(range.trim())!.version);

  it('names the Node lines the code needs: 20.19+ (zlib.crc32, @nestjs/throttler), 22.13+, 24+', () => {
    expect(validRange(ours)).not.toBeNull();
    expect(oldest).toEqual(['20.19.0', '22.13.0', '24.0.0']);
  });

  it('holds no package that asks for more than that, so npm ci warns of no engine', () => {
    const unmet = Object.entries<{ engines?: { node?: string }; optional?: boolean }>(
      lock.packages,
    ).flatMap(([path, entry]) => {
      const wanted = entry.engines?.node;
      if (path === '' || entry.optional || !wanted || !validRange(wanted)) return [];
      const refused = oldest.filter((version) => !satisfies(version, wanted));
      return refused.length > 0 ? [`${path} wants node ${wanted}, not ${refused.join(', ')}`] : [];
    });
    expect(unmet).toEqual([]);
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

  it('exposes the default PORT and WORKER_PORT, where nginx and compose reach the apps', () => {
    const builtIn = parseConfig({});
    const exposed = lastOf('EXPOSE')
      ?.args.split(/\s+/)
      .map((port) => Number(port.split('/')[0]));
    expect(exposed?.sort()).toEqual([builtIn.port, builtIn.workerPort].sort());
    const worker = publishedPorts('worker', defaults).map((port) => port.target);
    expect([upstreamServer().port, ...worker].sort()).toEqual(exposed?.sort());
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
