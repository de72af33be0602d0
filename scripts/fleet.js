// `npm run fleet`: Taskhub as the seeds draw it, on one machine. nginx (nginx/taskhub.conf.template)
// listens on FLEET_PORT (8080) in front of FLEET_API_INSTANCES (3) api processes, with
// FLEET_WORKER_INSTANCES (1) workers, all from the build (`npm run build` first) and configured by
// the usual environment (DATABASE_URL, REDIS_URL, ...), which every instance shares.
//
// When every instance is ready, one JSON line on stdout (again after each roll or replacement):
//   {"event":"fleet-ready","pid":…,"entry":"http://127.0.0.1:8080","apis":[{"pid":…,"url":…}],"workers":[…]}
// The instances' own log lines go to the same stdout.
//
// SIGHUP rolls the api instances one at a time: start a new one and wait until it is ready, put
// it into nginx's rotation, then drain the old one as Kubernetes would: SIGTERM turns its
// readiness to 503 while it keeps serving for SHUTDOWN_DRAIN_DELAY_MS; the fleet sees readiness
// fall, takes it out of rotation (nginx reloads gracefully: requests already sent finish), and the
// instance closes and exits. An instance that exits on its own is taken out of rotation and
// replaced. SIGTERM or SIGINT stops everything (nginx finishes what it has in flight, the
// instances drain) and exits 0.
//
// Written here rather than taken from a process manager (pm2, systemd, foreman): none of them
// knows to wait for a readiness endpoint, or to rewrite a load balancer's upstream as instances
// come and go, and that is all this does. nginx runs as a child with its configuration rendered
// into a temporary directory; nothing outside it is touched.
const { spawn, spawnSync } = require('node:child_process');
const {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} = require('node:fs');
const { createServer } = require('node:net');
const { tmpdir } = require('node:os');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const { NODE_RUNTIME_FLAGS } = require('./runtime');

const root = path.join(__dirname, '..');
const BUILT = {
  api: path.join(root, 'dist/apps/api/apps/api/src/main.js'),
  worker: path.join(root, 'dist/apps/worker/apps/worker/src/main.js'),
};
const TEMPLATE = path.join(root, 'nginx/taskhub.conf.template');

/** How often readiness is asked, and how long an instance may take to become ready. */
const POLL_MS = 100;
const READY_TIMEOUT_MS = 120_000;
/**
 * Each api's drain (SIGTERM to closing) unless the environment sets its own, as Kubernetes'
 * (k8s/config.yaml): time for the fleet to see readiness fall, reload nginx and for nginx's
 * previous workers to finish what they hold (`api-out-of-rotation` says how long that took).
 */
const DEFAULT_DRAIN_DELAY_MS = 5000;
/** The longest a reload waits for nginx's previous workers to finish their requests. */
const RELOAD_TIMEOUT_MS = 30_000;
/** nginx's passive health for each instance: one failure takes it out for this long. */
const UPSTREAM_SERVER_OPTIONS = 'max_fails=1 fail_timeout=5s';

function fail(message) {
  process.stderr.write(`fleet: ${message}\n`);
  process.exit(2);
}

function count(name, fallback, min, max) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    fail(`${name} must be an integer from ${min} to ${max}, not "${raw}"`);
  }
  return value;
}

const settings = {
  host: process.env.FLEET_HOST || '127.0.0.1',
  port: count('FLEET_PORT', 8080, 1, 65535),
  apis: count('FLEET_API_INSTANCES', 3, 1, 64),
  workers: count('FLEET_WORKER_INSTANCES', 1, 0, 64),
  nginx: process.env.FLEET_NGINX || findNginx(),
};
const shutdownTimeoutMs = count('SHUTDOWN_TIMEOUT_MS', 25_000, 1000, 120_000);
const drainDelayMs = count('SHUTDOWN_DRAIN_DELAY_MS', DEFAULT_DRAIN_DELAY_MS, 0, 60_000);

function findNginx() {
  for (const candidate of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/bin/nginx']) {
    if (existsSync(candidate)) return candidate;
  }
  return 'nginx';
}

/** One JSON line on stdout: written whole, so it never interleaves with the instances' lines. */
function log(event, fields = {}) {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Every instance started and not yet exited, in rotation or not. */
const running = new Set();

// --- instances -------------------------------------------------------------------------------

/** A running api or worker: its child process, where it serves, and whether it has exited. */
class Instance {
  constructor(kind, port) {
    this.kind = kind;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.stopping = false;
    this.terminated = false;
    const env = {
      ...process.env,
      HOST: '127.0.0.1',
      [kind === 'api' ? 'PORT' : 'WORKER_PORT']: String(port),
    };
    if (kind === 'api') {
      env.TRUST_PROXY = process.env.TRUST_PROXY || '1';
      env.SHUTDOWN_DRAIN_DELAY_MS = String(drainDelayMs);
    }
    this.child = spawn(process.execPath, [...NODE_RUNTIME_FLAGS, BUILT[kind]], {
      env,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    this.pid = this.child.pid;
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    this.exitCode = undefined;
    running.add(this);
    void this.exited.then(({ code }) => {
      this.exitCode = code;
      running.delete(this);
    });
  }

  get alive() {
    return this.exitCode === undefined;
  }

  async ready() {
    const response = await fetch(`${this.url}/health/ready`, {
      signal: AbortSignal.timeout(1000),
    }).catch(() => undefined);
    if (response) await response.body?.cancel();
    return response?.status === 200;
  }

  /** Resolves once ready; rejects if the instance exits or is not ready in time. */
  async whenReady() {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!(await this.ready())) {
      if (!this.alive) throw new Error(`${this.kind} ${this.pid} exited before it was ready`);
      if (Date.now() > deadline) {
        throw new Error(`${this.kind} ${this.pid} was not ready within ${READY_TIMEOUT_MS} ms`);
      }
      await sleep(POLL_MS);
    }
  }

  /** SIGTERM, once: the apps drain on the first, and a second would end them at once. */
  terminate() {
    this.stopping = true;
    if (this.alive && !this.terminated) this.child.kill('SIGTERM');
    this.terminated = true;
    this.terminatedAt ??= Date.now();
  }

  /** SIGTERM, then SIGKILL past the instance's own shutdown bound. */
  async stop() {
    this.terminate();
    const killer = setTimeout(() => this.child.kill('SIGKILL'), shutdownTimeoutMs + 5000);
    const exit = await this.exited;
    clearTimeout(killer);
    return exit;
  }

  describe() {
    return { pid: this.pid, url: this.url };
  }
}

async function startInstance(kind) {
  const instance = new Instance(kind, await freePort());
  try {
    await instance.whenReady();
  } catch (error) {
    instance.stopping = true;
    instance.child.kill('SIGKILL');
    await instance.exited;
    throw error;
  }
  return instance;
}

/** A process's /proc stat fields from the state on (state, ppid, ...), or undefined if gone. */
function procStat(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Alive: neither gone nor a zombie waiting for its parent. */
function processAlive(pid) {
  const fields = procStat(pid);
  return fields !== undefined && fields[0] !== 'Z';
}

// --- nginx -----------------------------------------------------------------------------------

class Nginx {
  constructor(listen) {
    this.dir = mkdtempSync(path.join(tmpdir(), 'taskhub-fleet-'));
    // nginx's workers run as `nobody` when the fleet runs as root: they must reach the directory.
    chmodSync(this.dir, 0o755);
    const site = readFileSync(TEMPLATE, 'utf8').replaceAll('${TASKHUB_LISTEN}', listen);
    writeFileSync(path.join(this.dir, 'taskhub.conf'), site);
    const temp = (name) => path.join(this.dir, name);
    writeFileSync(
      path.join(this.dir, 'nginx.conf'),
      [
        '# Rendered by scripts/fleet.js; removed when the fleet stops.',
        'daemon off;',
        'worker_processes 1;',
        `pid ${temp('nginx.pid')};`,
        'error_log stderr warn;',
        // A reload waits for the old workers' requests; an export download may not hold it longer.
        `worker_shutdown_timeout ${RELOAD_TIMEOUT_MS / 1000}s;`,
        'events { worker_connections 4096; }',
        'http {',
        '  access_log off;',
        `  client_body_temp_path ${temp('client_body')};`,
        `  proxy_temp_path ${temp('proxy')};`,
        `  fastcgi_temp_path ${temp('fastcgi')};`,
        `  uwsgi_temp_path ${temp('uwsgi')};`,
        `  scgi_temp_path ${temp('scgi')};`,
        '  include taskhub.conf;',
        '}',
        '',
      ].join('\n'),
    );
    this.child = undefined;
  }

  /** Writes the upstream's servers: the instances nginx sends requests to. */
  writeUpstream(instances) {
    const lines = instances.map(
      (instance) => `server 127.0.0.1:${instance.port} ${UPSTREAM_SERVER_OPTIONS};`,
    );
    writeFileSync(path.join(this.dir, 'taskhub-upstream.conf'), `${lines.join('\n')}\n`);
  }

  check() {
    const result = spawnSync(settings.nginx, this.args(['-t', '-q']), { encoding: 'utf8' });
    if (result.error) {
      throw new Error(
        `cannot run ${settings.nginx} (${result.error.code}): install nginx (apt-get install nginx) or set FLEET_NGINX`,
      );
    }
    if (result.status !== 0) throw new Error(`nginx refused its configuration:\n${result.stderr}`);
  }

  args(extra = []) {
    return ['-p', this.dir, '-c', path.join(this.dir, 'nginx.conf'), ...extra];
  }

  start() {
    this.check();
    this.child = spawn(settings.nginx, this.args(), { stdio: ['ignore', 'inherit', 'inherit'] });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  /** Serving on `listen` (the master opens the port before its workers start). */
  async whenListening() {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const response = await fetch(`${entry}/health/live`).catch(() => undefined);
      if (response) {
        await response.body?.cancel();
        return;
      }
      if (this.child.exitCode !== null) throw new Error('nginx exited at start');
      if (Date.now() > deadline) throw new Error('nginx did not start listening within 10 s');
      await sleep(POLL_MS);
    }
  }

  /**
   * Applies a new upstream: checked first, then SIGHUP, on which nginx starts new workers with it
   * and lets the old ones finish the requests they hold.
   */
  async reload(instances) {
    const previous = this.workers();
    this.writeUpstream(instances);
    this.check();
    this.child.kill('SIGHUP');
    // Done when every worker of the previous configuration has exited: each first finishes the
    // requests it holds, and from then on nothing is sent by the old rotation.
    const started = Date.now();
    while (previous.some(processAlive) && Date.now() - started < RELOAD_TIMEOUT_MS) {
      await sleep(20);
    }
    return Date.now() - started;
  }

  /** nginx's worker processes: the master's children. */
  workers() {
    const master = this.child.pid;
    try {
      return readFileSync(`/proc/${master}/task/${master}/children`, 'utf8')
        .split(' ')
        .filter(Boolean)
        .map(Number);
    } catch {
      return readdirSync('/proc')
        .filter((entry) => /^\d+$/.test(entry))
        .filter((entry) => procStat(entry)?.[1] === String(master))
        .map(Number);
    }
  }

  async stop() {
    if (this.child && this.child.exitCode === null) {
      // SIGQUIT: graceful, in-flight requests finish.
      this.child.kill('SIGQUIT');
      const killer = setTimeout(() => this.child.kill('SIGKILL'), shutdownTimeoutMs);
      await this.exited;
      clearTimeout(killer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// --- the fleet -------------------------------------------------------------------------------

const listen = `${settings.host.includes(':') ? `[${settings.host}]` : settings.host}:${settings.port}`;
const entry = `http://${listen}`;
const nginx = new Nginx(listen);
/** The api instances in nginx's rotation, and the workers. */
let apis = [];
let workers = [];
let state = 'starting'; // starting | running | stopping
/** Serialises rolls and replacements: one change to the rotation at a time. */
let changes = Promise.resolve();
let rollRequested = false;

function announce() {
  log('fleet-ready', {
    pid: process.pid,
    entry,
    apis: apis.map((instance) => instance.describe()),
    workers: workers.map((instance) => instance.describe()),
  });
}

function change(task) {
  changes = changes.then(task).catch((error) => {
    log('fleet-error', { message: error.message });
  });
  return changes;
}

/**
 * Replaces one api with a ready one, draining the old through its readiness as Kubernetes'
 * endpoints controller would: SIGTERM turns its readiness to 503 (it keeps serving for its drain
 * delay), and once readiness has fallen nginx gets the new rotation in one reload. The old
 * instance then finishes what nginx had sent it, closes and exits.
 */
async function replace(old, fresh) {
  old.terminate();
  const deadline = Date.now() + 10_000;
  while (old.alive && (await old.ready()) && Date.now() < deadline) await sleep(POLL_MS);
  apis = [...apis.filter((other) => other !== old), fresh];
  const tookMs = await nginx.reload(apis);
  const afterMs = Date.now() - old.terminatedAt;
  // Past the instance's drain delay it was closing while nginx could still send it requests.
  const late = afterMs > drainDelayMs;
  log('api-out-of-rotation', { pid: old.pid, afterMs, reloadMs: tookMs, late });
  const { code, signal } = await old.stop();
  log('api-stopped', { pid: old.pid, code, signal });
}

async function roll() {
  log('roll-started', { apis: apis.length });
  for (const old of [...apis]) {
    if (state !== 'running') return;
    if (!apis.includes(old)) continue; // replaced meanwhile
    const fresh = await startInstance('api');
    watch(fresh);
    await replace(old, fresh);
  }
  announce();
}

/** An instance that exits unasked is taken out of rotation and replaced. */
function watch(instance) {
  void instance.exited.then(({ code, signal }) => {
    if (instance.stopping || state !== 'running') return;
    log(`${instance.kind}-exited`, { pid: instance.pid, code, signal });
    if (instance.kind === 'api') {
      apis = apis.filter((other) => other !== instance);
      if (apis.length > 0) void nginx.reload(apis);
    } else {
      workers = workers.filter((other) => other !== instance);
    }
    void change(async () => {
      const wanted = instance.kind === 'api' ? settings.apis : settings.workers;
      const have = instance.kind === 'api' ? apis.length : workers.length;
      if (state !== 'running' || have >= wanted) return;
      const fresh = await startInstance(instance.kind);
      watch(fresh);
      if (instance.kind === 'api') {
        apis = [...apis, fresh];
        await nginx.reload(apis);
      } else {
        workers = [...workers, fresh];
      }
      announce();
    });
  });
}

async function stopAll() {
  if (state === 'stopping') return;
  state = 'stopping';
  // nginx and the instances together: nginx finishes what it holds while the apis drain.
  await Promise.all([nginx.stop(), ...[...running].map((instance) => instance.stop())]);
}

// However the fleet ends, nothing it started outlives it (a normal stop has ended them already).
process.on('exit', () => {
  for (const instance of running) instance.child.kill('SIGKILL');
  if (nginx.child && nginx.child.exitCode === null) nginx.child.kill('SIGKILL');
  rmSync(nginx.dir, { recursive: true, force: true });
});

async function main() {
  for (const [kind, file] of Object.entries(BUILT)) {
    if (!existsSync(file)) fail(`${kind} is not built (${file}): run npm run build first`);
  }
  if (!existsSync(TEMPLATE)) fail(`${TEMPLATE} is missing`);
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => {
      log('fleet-stopping', { signal });
      void stopAll().then(() => process.exit(0));
    });
  }
  process.on('SIGHUP', () => {
    if (state !== 'running') return void (rollRequested = true);
    void change(roll);
  });

  const started = await Promise.allSettled([
    ...Array.from({ length: settings.apis }, () => startInstance('api')),
    ...Array.from({ length: settings.workers }, () => startInstance('worker')),
  ]);
  const ready = started.filter((r) => r.status === 'fulfilled').map((r) => r.value);
  apis = ready.filter((instance) => instance.kind === 'api');
  workers = ready.filter((instance) => instance.kind === 'worker');
  const failure = started.find((r) => r.status === 'rejected');
  if (failure) throw failure.reason;
  if (state === 'stopping') return;
  nginx.writeUpstream(apis);
  nginx.start();
  void nginx.exited.then(({ code, signal }) => {
    if (state === 'stopping') return;
    log('nginx-exited', { code, signal });
    void stopAll().then(() => process.exit(1));
  });
  await nginx.whenListening();
  for (const instance of ready) watch(instance);
  state = 'running';
  announce();
  if (rollRequested) void change(roll);
}

main().catch((error) => {
  if (state === 'stopping') return; // asked to stop while starting: that path exits
  process.stderr.write(`fleet: ${error.message}\n`);
  void stopAll().then(() => process.exit(1));
});
