import Redis from 'ioredis';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** A redis-server of a spec's own: to stop (SIGSTOP), kill and restart, which the shared one never is. */
export interface RedisServer {
  port: number;
  child: ChildProcess;
  exited: Promise<void>;
  /** SIGSTOP, resolved once the process is really stopped. */
  pause(): Promise<void>;
  /** SIGCONT. */
  resume(): void;
  /** SIGKILL (after SIGCONT, so a stopped server dies too); safe to call twice. */
  kill(): void;
}

/** Starts a redis-server on `port`, answering PING when this resolves. */
export async function startRedis(port: number): Promise<RedisServer> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const server: RedisServer = {
    port,
    child,
    exited,
    pause: async () => {
      child.kill('SIGSTOP');
      while (processState(child.pid!) !== 'T') await sleep(1);
    },
    resume: () => void child.kill('SIGCONT'),
    kill: () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    },
  };
  await untilAnswering(port);
  return server;
}

/** Resolves once a Redis on `port` answers PING (polling every 5 ms, 5 s at most). */
export async function untilAnswering(port: number): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const client = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      if ((await client.ping()) === 'PONG') return;
    } catch {
      // not listening yet
    } finally {
      client.disconnect();
    }
    if (Date.now() > deadline) throw new Error(`redis-server on ${port} never answered`);
    await sleep(5);
  }
}

/** The process state letter from /proc (T: stopped). */
function processState(pid: number): string {
  return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
}
