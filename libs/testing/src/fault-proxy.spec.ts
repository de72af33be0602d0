import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from './eventually';
import { FaultProxy } from './fault-proxy';

/** How a client socket ended: the error code if it errored, else whether 'close' had an error. */
type Ending = { code?: string; hadError: boolean };

describe('FaultProxy', () => {
  let echo: net.Server;
  let target: { host: string; port: number };
  let received = 0; // bytes the echo server has read, to see what reached the target
  const echoSockets = new Set<net.Socket>();
  const clients: net.Socket[] = [];
  let proxy: FaultProxy | undefined;

  beforeAll(async () => {
    echo = net.createServer((socket) => {
      echoSockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => echoSockets.delete(socket));
      socket.on('data', (chunk) => {
        received += chunk.length;
        socket.write(chunk);
      });
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    target = { host: '127.0.0.1', port: (echo.address() as net.AddressInfo).port };
  });

  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    for (const client of clients.splice(0)) client.destroy();
  });

  afterAll(async () => {
    for (const socket of echoSockets) socket.destroy();
    await new Promise((resolve) => echo.close(resolve));
  });

  async function startProxy(): Promise<FaultProxy> {
    proxy = await FaultProxy.start(target);
    return proxy;
  }

  /** A client socket, with how it ends recorded from the start (so no 'error' goes unheard). */
  function open(port: number): { socket: net.Socket; ended: Promise<Ending>; text: () => string } {
    const socket = net.connect(port, '127.0.0.1');
    clients.push(socket);
    let data = '';
    let code: string | undefined;
    socket.on('data', (chunk) => (data += chunk.toString()));
    socket.on('error', (error: NodeJS.ErrnoException) => (code = error.code));
    const ended = new Promise<Ending>((resolve) =>
      socket.on('close', (hadError) => resolve({ code, hadError })),
    );
    return { socket, ended, text: () => data };
  }

  /** Resolves once connected; rejects with the connect error (ECONNREFUSED). */
  async function connect(port: number): Promise<ReturnType<typeof open>> {
    const client = open(port);
    await new Promise<void>((resolve, reject) => {
      client.socket.once('connect', resolve);
      client.socket.once('error', reject);
    });
    return client;
  }

  /** Writes `message` and resolves with the echo once all of it is back. */
  async function roundTrip(client: ReturnType<typeof open>, message: string): Promise<string> {
    const before = client.text().length;
    client.socket.write(message);
    return eventually(
      () => Promise.resolve(client.text().slice(before)),
      (text) => text.length >= message.length,
      5000,
    );
  }

  /** Resolves with the ending if the socket closes within `ms`, else with 'open'. */
  function within(ended: Promise<Ending>, ms: number): Promise<Ending | 'open'> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'open'>((resolve) => (timer = setTimeout(resolve, ms, 'open')));
    // Cleared, not left to run out: the last test counts the timers still pending.
    return Promise.race([ended, timeout]).finally(() => clearTimeout(timer));
  }

  it('passes bytes through both ways', async () => {
    const proxy = await startProxy();
    const client = await connect(proxy.port);
    expect(await roundTrip(client, 'hello')).toBe('hello');
    expect(proxy.fault).toEqual({ kind: 'pass' });
    expect(proxy.connections).toBe(1);
  });

  it('delays every chunk both ways by its latency, keeping their order', async () => {
    const proxy = await startProxy();
    const client = await connect(proxy.port);
    await proxy.set({ kind: 'latency', ms: 150 });
    const started = performance.now();
    expect(await roundTrip(client, 'slow')).toBe('slow');
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(150 * 2 * 0.9);
    expect(elapsed).toBeLessThan(5000);

    // A chunk sent after the latency drops must not overtake one still held back.
    await proxy.set({ kind: 'latency', ms: 300 });
    client.socket.write('a');
    await sleep(20);
    await proxy.set({ kind: 'pass' });
    client.socket.write('b');
    await eventually(
      () => Promise.resolve(client.text()),
      (text) => text.length >= 'slowab'.length,
      5000,
    );
    expect(client.text()).toBe('slowab');
  });

  it('refuses new connections and closes open ones, then listens again on the same port', async () => {
    const proxy = await startProxy();
    const port = proxy.port;
    const existing = await connect(port);
    expect(await roundTrip(existing, 'before')).toBe('before');

    await proxy.set({ kind: 'refuse' });
    expect(await within(existing.ended, 2000)).not.toBe('open');
    await expect(connect(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(proxy.connections).toBe(0);

    await proxy.set({ kind: 'pass' });
    expect(proxy.port).toBe(port);
    expect(await roundTrip(await connect(port), 'after')).toBe('after');
  });

  it('blackholes open and new connections, and passes new ones once lifted', async () => {
    const proxy = await startProxy();
    const existing = await connect(proxy.port);
    expect(await roundTrip(existing, 'before')).toBe('before');

    await proxy.set({ kind: 'blackhole' });
    const fresh = await connect(proxy.port);
    const reachedTarget = received;
    existing.socket.write('lost');
    fresh.socket.write('lost');
    expect(await within(existing.ended, 300)).toBe('open');
    expect(await within(fresh.ended, 0)).toBe('open');
    expect(existing.text()).toBe('before');
    expect(fresh.text()).toBe('');
    expect(received).toBe(reachedTarget);
    expect(proxy.connections).toBe(2);

    await proxy.set({ kind: 'pass' });
    // Their byte streams lost bytes, so they are ended rather than resumed.
    expect(await within(existing.ended, 2000)).not.toBe('open');
    expect(await within(fresh.ended, 2000)).not.toBe('open');
    expect(await roundTrip(await connect(proxy.port), 'after')).toBe('after');
  });

  it('resets open and new connections', async () => {
    const proxy = await startProxy();
    const existing = await connect(proxy.port);
    expect(await roundTrip(existing, 'before')).toBe('before');

    await proxy.set({ kind: 'reset' });
    const isReset = (ending: Ending | 'open'): boolean =>
      ending !== 'open' && (ending.code === 'ECONNRESET' || ending.hadError);
    expect(isReset(await within(existing.ended, 2000))).toBe(true);
    // The handshake completes in the kernel before the proxy sees the connection, then the RST.
    const fresh = open(proxy.port);
    expect(await within(fresh.ended, 2000)).toMatchObject({ code: 'ECONNRESET' });
    expect(proxy.connections).toBe(0);
  });

  it('leaves nothing open once closed, with chunks still held back', async () => {
    const resources = (): number =>
      process
        .getActiveResourcesInfo()
        .filter((kind) => ['TCPSocketWrap', 'TCPServerWrap', 'Timeout'].includes(kind)).length;
    // Earlier tests' sockets close asynchronously (the echo server's side only once it hears the
    // FIN or RST), so the baseline is taken once they are all gone and the count holds still.
    await eventually(
      () => Promise.resolve(echoSockets.size),
      (n) => n === 0,
      2000,
    );
    let baseline = resources();
    for (let settled = 0, tries = 0; settled < 3 && tries < 100; tries += 1) {
      await sleep(20);
      const now = resources();
      settled = now === baseline ? settled + 1 : 0;
      baseline = now;
    }
    const proxy = await startProxy();
    const client = await connect(proxy.port);
    expect(await roundTrip(client, 'hello')).toBe('hello');
    await proxy.set({ kind: 'latency', ms: 10_000 });
    client.socket.write('held back');
    await sleep(50);

    await proxy.close();
    expect(proxy.connections).toBe(0);
    await expect(connect(proxy.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(proxy.set({ kind: 'pass' })).rejects.toThrow('closed');
    // The client (which auto-closes on the proxy's FIN) and the echo server's socket close too.
    expect(await within(client.ended, 2000)).not.toBe('open');
    // Nothing of the proxy's is left: no more sockets, servers or timers than before it. (Fewer
    // is fine: the count is process-wide, and unrelated timers may end meanwhile.)
    const left = await eventually(
      () => Promise.resolve(resources()),
      (n) => n <= baseline,
      2000,
    );
    expect(left).toBeLessThanOrEqual(baseline);
  });
});
