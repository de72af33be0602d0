import { CONNECTIONS_CHECK_INTERVAL_MS } from '@app/http';
import type { INestApplication, LoggerService } from '@nestjs/common';
import type { Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Lifecycle } from './lifecycle';

export interface ShutdownOptions {
  /** Time between readiness turning 503 and the listener closing, for load balancers to notice. */
  drainDelayMs: number;
  /** Past this, the process exits 1 rather than hang. */
  timeoutMs: number;
}

/**
 * SIGTERM or SIGINT: readiness flips to 503, then after the drain delay the app closes: requests
 * still arriving are answered 408 and their connections closed, the listener stops accepting,
 * in-flight requests finish, idle keep-alive sockets close, pools and
 * channels close (Nest's shutdown hooks), and the process exits 0. Nest's own
 * enableShutdownHooks() re-raises the signal after closing, which ends the process with 143
 * rather than 0: hence this.
 */
export function installGracefulShutdown(
  app: INestApplication,
  options: ShutdownOptions,
  logger: LoggerService,
): void {
  let closing = false;
  const shutdown = async (signal: NodeJS.Signals): Promise<void> => {
    if (closing) return;
    closing = true;
    app.get(Lifecycle).startDraining();
    logger.log(`${signal} received: draining, then closing`, 'Shutdown');
    const deadline = setTimeout(() => {
      logger.error(
        `Shutdown took longer than ${options.timeoutMs} ms; exiting`,
        undefined,
        'Shutdown',
      );
      process.exit(1);
    }, options.timeoutMs);
    deadline.unref();
    try {
      await sleep(options.drainDelayMs);
      const server = app.getHttpServer() as Server;
      // A connection whose request is still arriving (a slow upload, slow headers) would hold
      // the close open until its own timeout. Node's periodic check (connectionsCheckingInterval)
      // reads these bounds each time: lowered to 1 ms, its next pass answers every such request
      // 408 and closes its connection; a request already in its handler is not touched. close()
      // stops that check, hence one interval's wait before it.
      server.headersTimeout = 1;
      server.requestTimeout = 1;
      await sleep(CONNECTIONS_CHECK_INTERVAL_MS);
      // Closing the listener closes the connections idle at that moment; a keep-alive connection
      // whose request finishes later would hold the close open, so idle ones are swept until done.
      const sweeper = setInterval(() => server.closeIdleConnections(), 100);
      await app.close().finally(() => clearInterval(sweeper));
      logger.log('Closed cleanly', 'Shutdown');
      process.exit(0);
    } catch (error) {
      logger.error(
        `Shutdown failed: ${(error as Error).message}`,
        (error as Error).stack,
        'Shutdown',
      );
      process.exit(1);
    }
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, (received) => void shutdown(received));
  }
}
