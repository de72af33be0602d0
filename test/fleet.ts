import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from './processes';

export interface Member {
  pid: number;
  url: string;
}

/** The line `npm run fleet` writes each time every instance is ready. */
export interface FleetReady {
  event: 'fleet-ready';
  pid: number;
  entry: string;
  apis: Member[];
  workers: Member[];
}

export interface Fleet {
  child: ChildProcess;
  /** The latest fleet-ready line. */
  current: FleetReady;
  /** Every JSON event the fleet itself wrote, in order. */
  events: { event: string; [field: string]: unknown }[];
  /** Resolves with the next fleet-ready line after this call (rejects after `ms`). */
  nextReady(ms?: number): Promise<FleetReady>;
  /** SIGTERM, then the exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

const SCRIPT = join(__dirname, '../scripts/fleet.js');

/**
 * `node scripts/fleet.js` (what `npm run fleet` runs) with this run's database, queues and a
 * Redis prefix of its own, on a free port; resolves at its first fleet-ready line. The fleet
 * leads a process group of its own (nginx and the instances are in it), so a test that fails
 * half-way still leaves nothing running: stop() ends with a SIGKILL to the group.
 */
export async function startFleet(env: Record<string, string> = {}): Promise<Fleet> {
  const port = await freePort();
  const child = spawn(process.execPath, [SCRIPT], {
    env: {
      ...process.env,
      FLEET_PORT: String(port),
      LOG_LEVEL: 'warn',
      REDIS_KEY_PREFIX: `${process.env.REDIS_KEY_PREFIX}fleet-${port}:`,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  let partial = '';
  const events: Fleet['events'] = [];
  const waiters: ((ready: FleetReady) => void)[] = [];
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    partial += chunk.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      let parsed: { event?: unknown } | undefined;
      try {
        parsed = JSON.parse(line) as { event?: unknown };
      } catch {
        continue; // an instance's line cut by another's (a pipe keeps only short writes whole)
      }
      if (typeof parsed?.event !== 'string') continue;
      events.push(parsed as Fleet['events'][number]);
      if (parsed.event === 'fleet-ready') {
        fleet.current = parsed as FleetReady;
        for (const waiter of waiters.splice(0)) waiter(fleet.current);
      }
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const fleet: Fleet = {
    child,
    current: undefined as unknown as FleetReady,
    events,
    output: () => output,
    nextReady(ms = 120_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no fleet-ready within ${ms} ms:\n${output.slice(-4000)}`)),
          ms,
        );
        waiters.push((ready) => {
          clearTimeout(timer);
          resolve(ready);
        });
        void exited.then(({ code, signal }) => {
          clearTimeout(timer);
          reject(new Error(`the fleet exited (${code ?? signal}):\n${output.slice(-4000)}`));
        });
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const killer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 60_000);
      const exit = await exited;
      clearTimeout(killer);
      // Whatever the fleet left behind (it leaves nothing when it stops cleanly).
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // the group is empty
      }
      return exit;
    },
  };
  try {
    await fleet.nextReady();
  } catch (error) {
    await fleet.stop();
    throw error;
  }
  return fleet;
}
