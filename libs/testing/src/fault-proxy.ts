import * as net from 'node:net';
import { performance } from 'node:perf_hooks';

/** A network fault the proxy applies, to connections already open and to new ones. */
export type Fault =
  /** Forward everything untouched. */
  | { kind: 'pass' }
  /** Delay every chunk, both directions, by `ms`; chunks keep their order. */
  | { kind: 'latency'; ms: number }
  /** Stop listening (ECONNREFUSED) and close the open connections, as a stopped server would. */
  | { kind: 'refuse' }
  /** Accept, then forward nothing either way, as a partition would; sockets stay open. */
  | { kind: 'blackhole' }
  /** Reset (TCP RST) the open connections and every new one. */
  | { kind: 'reset' };

/** One direction of a connection: writes chunks in order, each no earlier than its due time. */
class Lane {
  private readonly queue: { due: number; chunk: Buffer }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private ending = false;

  constructor(
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
  ) {
    // Backpressure, as .pipe() would: stop reading while the far side's buffer is full.
    dst.on('drain', () => src.resume());
  }

  send(chunk: Buffer, delayMs: number): void {
    // Queued even without delay: a chunk must not overtake ones still held back by a latency.
    this.queue.push({ due: performance.now() + delayMs, chunk });
    this.pump();
  }

  /** Half-closes the far side once everything queued before the FIN has been written. */
  end(): void {
    this.ending = true;
    this.pump();
  }

  drop(): void {
    this.queue.length = 0;
    this.ending = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private pump(): void {
    if (this.timer) return;
    const now = performance.now();
    while (this.queue.length > 0 && this.queue[0].due <= now) {
      if (!this.dst.write(this.queue.shift()!.chunk)) this.src.pause();
    }
    if (this.queue.length > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, this.queue[0].due - now);
    } else if (this.ending) {
      this.dst.end();
    }
  }
}

/** A client socket, and its upstream socket unless it was accepted into a blackhole. */
class Connection {
  blackholed = false;
  private upstream: net.Socket | undefined;
  private readonly lanes: Lane[] = [];

  constructor(
    private readonly client: net.Socket,
    private readonly delayMs: () => number,
  ) {
    // A peer's RST must never reach the test run as an unhandled 'error'.
    client.on('error', () => this.destroy());
  }

  connect(target: { host: string; port: number }): void {
    // Half-open, so a FIN is forwarded after the data queued before it, not ahead of it.
    const upstream = net.connect({ ...target, allowHalfOpen: true, noDelay: true });
    upstream.on('error', () => this.destroy());
    this.upstream = upstream;
    this.wire(this.client, upstream);
    this.wire(upstream, this.client);
  }

  /** Applies `fault` to this open connection; true when that ended it. */
  apply(fault: Fault): boolean {
    switch (fault.kind) {
      case 'refuse':
        this.destroy();
        return true;
      case 'reset':
        this.reset();
        return true;
      case 'blackhole':
        this.blackhole();
        return false;
      case 'pass':
      case 'latency':
        // Bytes were dropped mid-stream: whatever protocol ran over them cannot resume.
        if (this.blackholed) this.destroy();
        return this.blackholed;
    }
  }

  blackhole(): void {
    this.blackholed = true;
    for (const lane of this.lanes) lane.drop();
    // Keep reading (and dropping), so the peers see an open, silent connection, not a full one.
    this.client.resume();
    this.upstream?.resume();
  }

  reset(): void {
    for (const lane of this.lanes) lane.drop();
    this.client.resetAndDestroy();
    this.upstream?.destroy();
  }

  destroy(): void {
    for (const lane of this.lanes) lane.drop();
    this.client.destroy();
    this.upstream?.destroy();
  }

  private wire(src: net.Socket, dst: net.Socket): void {
    const lane = new Lane(src, dst);
    this.lanes.push(lane);
    src.on('data', (chunk: Buffer) => {
      if (!this.blackholed) lane.send(chunk, this.delayMs());
    });
    src.on('end', () => {
      if (!this.blackholed) lane.end();
    });
    dst.on('close', () => lane.drop());
  }
}

/**
 * A TCP proxy for tests that injects network faults between a client and `target`: latency,
 * refused connections, a blackhole, resets. Point the client at `listenHost:port` instead.
 */
export class FaultProxy {
  /** The port it listens on: chosen at start, kept across `refuse`, for the proxy's life. */
  readonly port: number;
  private current: Fault = { kind: 'pass' };
  private readonly open = new Set<Connection>();
  // Faults apply one at a time: re-listening while a refuse's close is pending would leave the
  // server's 'close' event (and so that set()) waiting forever.
  private pending: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly server: net.Server,
    private readonly target: { host: string; port: number },
    private readonly host: string,
  ) {
    this.port = (server.address() as net.AddressInfo).port;
    // Accept errors (EMFILE and the like) are transient; unhandled, they would crash the run.
    server.on('error', () => undefined);
    server.on('connection', (client) => this.accept(client));
  }

  /** Starts a proxy to `target`, listening on an ephemeral port of `listenHost`. */
  static async start(
    target: { host: string; port: number },
    listenHost = '127.0.0.1',
  ): Promise<FaultProxy> {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true });
    await listen(server, 0, listenHost);
    // Safe to attach the handler only now: connections arrive in a later turn of the event loop.
    return new FaultProxy(server, target, listenHost);
  }

  /** The fault in force. */
  get fault(): Fault {
    return this.current;
  }

  /** Client connections open right now. */
  get connections(): number {
    return this.open.size;
  }

  /** Applies `fault`; resolves once it is in force (for `refuse`, once nothing listens). */
  set(fault: Fault): Promise<void> {
    return this.serially(() => this.apply(fault));
  }

  /** Destroys every connection and stops listening. */
  close(): Promise<void> {
    return this.serially(async () => {
      this.closed = true;
      this.current = { kind: 'refuse' };
      for (const connection of this.open) connection.destroy();
      this.open.clear();
      if (this.server.listening) await closeServer(this.server);
    });
  }

  private serially(step: () => Promise<void>): Promise<void> {
    const done = this.pending.then(step);
    this.pending = done.catch(() => undefined);
    return done;
  }

  private async apply(fault: Fault): Promise<void> {
    if (this.closed) throw new Error('FaultProxy is closed');
    this.current = fault;
    // Forgotten at once, not on their 'close' (a loop turn later): `connections` must already be
    // right when set() resolves.
    for (const connection of this.open) if (connection.apply(fault)) this.open.delete(connection);
    if (fault.kind === 'refuse') {
      if (this.server.listening) await closeServer(this.server);
    } else if (!this.server.listening) {
      await listen(this.server, this.port, this.host);
    }
  }

  private accept(client: net.Socket): void {
    const fault = this.current;
    if (fault.kind === 'reset') {
      client.on('error', () => undefined);
      client.resetAndDestroy();
      return;
    }
    if (fault.kind === 'refuse') {
      // Accepted in the instant before the listener closed.
      client.on('error', () => undefined);
      client.destroy();
      return;
    }
    const connection = new Connection(client, () =>
      this.current.kind === 'latency' ? this.current.ms : 0,
    );
    this.open.add(connection);
    client.on('close', () => this.open.delete(connection));
    if (fault.kind === 'blackhole') connection.blackhole();
    else connection.connect(this.target);
  }
}

function listen(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (error: Error): void => reject(error);
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      resolve();
    });
  });
}

// Resolves on the server's 'close', which waits for its accepted sockets to be destroyed too.
function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve, reject) =>
    server.close((error) => (error ? reject(error) : resolve())),
  );
}
