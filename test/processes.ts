import { ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const BUILT = {
  api: join(__dirname, '../dist/apps/api/apps/api/src/main.js'),
  worker: join(__dirname, '../dist/apps/worker/apps/worker/src/main.js'),
  /** `run` or `revert`, as the production image runs migrations. */
  migrate: join(__dirname, '../dist/apps/api/apps/api/src/migrate.js'),
};

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs a built app (`npm test` builds first) as production would, with this run's services. */
export function runBuilt(
  app: keyof typeof BUILT,
  env: Record<string, string>,
  args: string[] = [],
): Running {
  if (!existsSync(BUILT[app])) throw new Error(`${BUILT[app]} is missing: run npm run build first`);
  let out = '';
  let err = '';
  const child = spawn(process.execPath, [BUILT[app], ...args], {
    env: { ...process.env, LOG_LEVEL: 'info', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Polls `url` until it answers `status`, for at most `ms`. */
export async function waitFor(url: string, status = 200, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if ((await fetch(url)).status === status) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer ${status} within ${ms} ms`);
    await sleep(100);
  }
}

/** One JSON request to a running instance, with an access token or an API key. */
export async function send(
  base: string,
  method: string,
  path: string,
  auth: { token?: string; key?: string } = {},
  body?: unknown,
): Promise<{ status: number; headers: Headers; body: any }> {
  const headers: Record<string, string> = {};
  if (auth.token) headers.authorization = `Bearer ${auth.token}`;
  if (auth.key) headers['x-api-key'] = auth.key;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${base}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text ? JSON.parse(text) : undefined,
  };
}

/** A built api on a free port, once it is ready, and its base URL. */
export async function startBuiltApi(
  env: Record<string, string> = {},
): Promise<{ run: Running; base: string }> {
  const port = await freePort();
  const run = runBuilt('api', { PORT: String(port), ...env });
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitFor(`${base}/health/ready`);
  } catch (error) {
    run.child.kill('SIGKILL');
    throw error;
  }
  return { run, base };
}
