import { QUEUES, queueName, rmqServerOptions } from '@app/messaging';
import { loadConfig } from '@app/config';
import { ClientRMQ } from '@nestjs/microservices';
import { connect } from 'amqplib';
import { Socket, connect as tcpConnect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { firstValueFrom } from 'rxjs';
import { freePort, runBuilt, waitFor } from './processes';

/**
 * Every line of `text` parsed as JSON: a line that is not (Nest's coloured console, a bare
 * message) fails the spec, naming it.
 */
function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON line: ${line}`);
      }
    });
}

/** The built apps as separate processes: start-up, logs, SIGTERM, bad configuration. */
describe('processes', () => {
  describe.each(['api', 'worker'] as const)('the %s failing to start', (app) => {
    it('writes only JSON lines, the last one saying why, and exits 1', async () => {
      // A database that refuses: what a crash loop looks like in the logs.
      const run = runBuilt(app, {
        DATABASE_URL: 'postgres://postgres@127.0.0.1:1/taskhub',
      });
      expect(await run.exited).toEqual({ code: 1, signal: null });
      const lines = jsonLines(`${run.stdout()}${run.stderr()}`);
      expect(lines.length).toBeGreaterThan(1);
      expect(lines.every((line) => line.service === app)).toBe(true);
      expect(lines.at(-1)).toEqual(
        expect.objectContaining({
          level: 60,
          msg: `${app} failed to start`,
          err: expect.objectContaining({ code: 'ECONNREFUSED' }),
        }),
      );
    });
  });

  describe('api', () => {
    it('a bad variable stops start-up with one JSON line naming it, and exit code 1', async () => {
      const run = runBuilt('api', { PORT: 'eighty' });
      expect(await run.exited).toEqual({ code: 1, signal: null });
      expect(run.stderr()).toBe('');
      expect(jsonLines(run.stdout())).toEqual([
        expect.objectContaining({
          level: 60,
          service: 'api',
          msg: 'Invalid configuration: PORT: expected a whole number from 1 to 65535 (got "eighty")',
        }),
      ]);
    });

    it('logs JSON lines with the request id and never the token; SIGTERM drains, finishes in-flight work and exits 0', async () => {
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      const run = runBuilt('api', { PORT: String(port), SHUTDOWN_DRAIN_DELAY_MS: '500' });
      try {
        await waitFor(`${base}/health/ready`);
        const registered = await fetch(`${base}/v1/auth/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-request-id': 'trace-register-1' },
          body: JSON.stringify({
            email: `p-${Date.now()}@example.test`,
            password: 'secret password 1',
            name: 'P',
          }),
        });
        expect(registered.status).toBe(201);
        const { accessToken } = (await registered.json()) as { accessToken: string };
        const me = await fetch(`${base}/v1/users/me`, {
          headers: { authorization: `Bearer ${accessToken}`, 'x-request-id': 'trace-me-1' },
        });
        expect(me.status).toBe(200);

        // A request in flight: headers and half the body sent before SIGTERM, the rest after.
        const body = JSON.stringify({ title: 'sent across a shutdown' });
        const socket: Socket = tcpConnect(port, '127.0.0.1');
        await new Promise((resolve) => socket.once('connect', resolve));
        let response = '';
        socket.on('data', (chunk) => (response += chunk.toString()));
        socket.write(
          `POST /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${accessToken}\r\n` +
            `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`,
        );
        await sleep(100);
        const signalledAt = Date.now();
        run.child.kill('SIGTERM');
        await sleep(150);
        // Draining: readiness flips to 503, liveness stays 200.
        expect((await fetch(`${base}/health/ready`)).status).toBe(503);
        expect((await fetch(`${base}/health/live`)).status).toBe(200);
        // Past the drain delay the listener is closing; the request already in flight finishes.
        await sleep(700);
        expect(run.child.exitCode).toBeNull();
        await expect(fetch(`${base}/health/live`)).rejects.toThrow();
        socket.write(body.slice(10));
        const exit = await run.exited;
        expect(exit).toEqual({ code: 0, signal: null });
        expect(Date.now() - signalledAt).toBeLessThan(30_000);
        expect(response).toMatch(/^HTTP\/1\.1 201 /);
        socket.destroy();

        const lines = run.stdout().split('\n').filter(Boolean);
        const parsed = lines.map((line) => JSON.parse(line) as Record<string, any>);
        const access = parsed.find((entry) => entry.reqId === 'trace-me-1');
        expect(access).toMatchObject({
          msg: 'request completed',
          method: 'GET',
          path: '/v1/users/me',
          statusCode: 200,
          service: 'api',
        });
        expect(parsed.some((entry) => entry.reqId === 'trace-register-1')).toBe(true);
        expect(run.stdout()).not.toContain(accessToken);
        expect(run.stdout()).not.toContain('secret password 1');
        expect(
          parsed.some((entry) => entry.context === 'Shutdown' && /SIGTERM/.test(entry.msg)),
        ).toBe(true);
      } finally {
        run.child.kill('SIGKILL');
      }
    });
  });

  describe('worker', () => {
    it('consumes its durable queue with manual acks, reports health and metrics, and exits 0 on SIGTERM', async () => {
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      const run = runBuilt('worker', { WORKER_PORT: String(port) });
      const config = loadConfig();
      const client = new ClientRMQ({
        urls: [config.rabbitmq.url],
        queue: queueName(config, QUEUES.jobs),
        // Declared as the worker declares it (its dead-letter arguments), or the broker refuses.
        queueOptions: rmqServerOptions(config, QUEUES.jobs).options?.queueOptions,
        persistent: true,
      });
      try {
        await waitFor(`${base}/health/ready`);
        const ready = (await (await fetch(`${base}/health/ready`)).json()) as any;
        expect(ready.details.rabbitmq).toEqual({
          status: 'up',
          consumers: Object.fromEntries(Object.values(QUEUES).map((q) => [q, 'connected'])),
        });
        expect((await fetch(`${base}/health/live`)).status).toBe(200);
        expect(await (await fetch(`${base}/metrics`)).text()).toMatch(
          /^process_cpu_user_seconds_total /m,
        );

        // A message goes through the broker, is handled and answered.
        const pong = await firstValueFrom(client.send<{ pong: boolean }>('worker.ping', {}));
        expect(pong.pong).toBe(true);

        // The queue is durable (redeclaring it non-durable is refused) and has the worker on it,
        // with nothing left unacked.
        const amqp = await connect(config.rabbitmq.url);
        try {
          const channel = await amqp.createChannel();
          const state = await channel.checkQueue(queueName(config, QUEUES.jobs));
          expect(state.consumerCount).toBeGreaterThanOrEqual(1);
          expect(state.messageCount).toBe(0);
          const probe = await amqp.createChannel();
          probe.on('error', () => undefined);
          await expect(
            probe.assertQueue(queueName(config, QUEUES.jobs), { durable: false }),
          ).rejects.toThrow(/PRECONDITION_FAILED/);
        } finally {
          await amqp.close();
        }

        run.child.kill('SIGTERM');
        expect(await run.exited).toEqual({ code: 0, signal: null });
      } finally {
        await client.close();
        run.child.kill('SIGKILL');
      }
    });
  });
});
