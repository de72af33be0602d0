import type { INestApplication, LoggerService } from '@nestjs/common';
import type { Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Lifecycle } from './lifecycle';

/**
 * How long, once the listener closes, a request still arriving (headers or body) has to finish
 * arriving: one that does is handled like any other in flight; one that does not (a slow upload,
 * slow headers) is answered 408 and its connection closed, so it cannot hold the shutdown open
 * until SHUTDOWN_TIMEOUT_MS. Any client sending a 1 MiB body at a sane speed is done long before.
 */
export const ARRIVAL_GRACE_MS = 2000;

export interface ShutdownOptions {
  /** Time between readiness turning 503 and the listener closing, for load balancers to notice. */
  drainDelayMs: number;
  /** Past this, the process exits 1 rather than hang. */
  timeoutMs: number;
}

/**
 * SIGTERM or SIGINT: readiness flips to 503, then after the drain delay the app closes: the
 * listener stops accepting, in-flight requests finish, requests still arriving get
 * ARRIVAL_GRACE_MS to arrive (else 408, connection closed), idle keep-alive sockets close, pools
 * and channels close (Nest's shutdown hooks), and the process exits 0. Nest's own
 * enableShutdownHooks() re-raises the signal after closing, which ends the process with 143
 * rather than 0: hence this.
 */
export function installGracefulShutdown(
  app: INestApplication,
  options: ShutdownOptions,
  logger: LoggerService,
): void {
  let closing = false;
  // Every open connection, to find at shutdown the ones whose request is still arriving: Node's
  // own check for that (requestTimeout) stops once the listener closes. Per connection, not per
  // request.
  const server = app.getHttpServer() as Server;
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
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
      const graceEnds = Date.now() + ARRIVAL_GRACE_MS;
      // Closing the listener closes the connections idle at that moment; a keep-alive connection
      // whose request finishes later would hold the close open, so idle ones are swept until done.
      // Past the grace, a request still arriving is timed out as Node's own check would do it:
      // its 'clientError' handler answers 408 and closes the connection.
      const sweeper = setInterval(() => {
        server.closeIdleConnections();
        if (Date.now() < graceEnds) return;
        for (const socket of sockets) {
          if (stillArriving(socket)) server.emit('clientError', requestTimeout(), socket);
        }
      }, 100);
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

/**
 * The connection is in the middle of a request's headers or body: no response started, and the
 * request (if its headers are in) not complete. An idle keep-alive connection is closed by the
 * sweep before this is asked.
 */
function stillArriving(socket: Socket): boolean {
  if (socket.destroyed) return false;
  const response = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
  return response === undefined || (!response.headersSent && !response.req.complete);
}

function requestTimeout(): Error {
  return Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
}
