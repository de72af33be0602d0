import { loadConfig } from '@app/config';
import { QUEUES, addToOutbox } from '@app/messaging';
import { call, eventually, registerUser } from '@app/testing';
import { TASK_EVENT, type TaskEvent } from '@app/webhooks';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DataSource } from 'typeorm';
import { startApi } from './app';
import { deleteJobQueues } from './queues';
import { dropDatabase, ownDatabase } from './databases';
import { type Running, freePort, runBuilt, waitFor } from './processes';

const { name: DATABASE, url: DATABASE_URL } = ownDatabase('worker_crash');
const base = loadConfig();
const EVENTS = 2000;
const ENV = {
  DATABASE_URL,
  RABBITMQ_QUEUE_PREFIX: `${base.rabbitmq.queuePrefix}crash-${randomUUID()}.`,
  JOB_RETRY_BASE_MS: '100',
  OUTBOX_POLL_MS: '20',
  WEBHOOK_ALLOW_HOSTS: '127.0.0.1',
  LOG_LEVEL: 'warn',
};

/**
 * The built worker killed with SIGKILL in the middle of 2 000 task events, then started again:
 * every event reaches the webhook receiver (which dedupes by Webhook-Id, as the contract asks
 * receivers to), none is lost, and each side effect in the database (one delivery per event,
 * settled once) happens once.
 */
describe('the worker killed mid-way through 2 000 events', () => {
  let api: NestFastifyApplication;
  let db: DataSource;
  // The receiver: counts every request, and the distinct Webhook-Ids.
  const seen = new Map<string, number>();
  let requests = 0;
  const receiver = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      requests += 1;
      const id = String(request.headers['webhook-id']);
      seen.set(id, (seen.get(id) ?? 0) + 1);
      response.writeHead(204).end();
    });
  });
  // Every worker started, stopped in afterAll whatever the test did: a child or a server left
  // running would keep Jest from exiting.
  const workers: Running[] = [];

  beforeAll(async () => {
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    api = await startApi(ENV);
    db = api.get(DataSource);
  });

  afterAll(async () => {
    for (const worker of workers) {
      if (worker.child.exitCode === null && worker.child.signalCode === null) {
        worker.child.kill('SIGKILL');
      }
      await worker.exited;
    }
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
    await api?.close();
    await deleteJobQueues(loadConfig(ENV));
    await dropDatabase(DATABASE);
  });

  it('loses none and applies each once after a restart', async () => {
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;

    const user = await registerUser(api);
    const subscribed = await call(api, {
      method: 'POST',
      url: '/v1/webhooks',
      token: user.accessToken,
      body: { url, events: ['task.created'] },
    });
    expect(subscribed.status).toBe(201);
    // 2 000 task events, as task writes leave them in the outbox.
    await db.transaction(async (manager) => {
      for (let n = 0; n < EVENTS; n += 1) {
        const event: TaskEvent = {
          id: randomUUID(),
          type: 'task.created',
          createdAt: new Date().toISOString(),
          userId: user.id,
          data: { n },
        };
        await addToOutbox(manager, QUEUES.taskEvents, TASK_EVENT, event);
      }
    });

    const start = async (): Promise<Running> => {
      const port = await freePort();
      const worker = runBuilt('worker', { ...ENV, WORKER_PORT: String(port) });
      workers.push(worker);
      await waitFor(`http://127.0.0.1:${port}/health/ready`);
      return worker;
    };
    let worker = await start();
    await eventually(
      () => Promise.resolve(seen.size),
      (n) => n >= EVENTS / 4,
      60_000,
      5,
    );
    worker.child.kill('SIGKILL');
    expect(await worker.exited).toMatchObject({ signal: 'SIGKILL' });
    expect(seen.size).toBeLessThan(EVENTS);

    worker = await start();
    const settled = () =>
      db
        .query<Array<{ status: string; count: number }>>(
          `SELECT status, count(*)::int AS count FROM webhook_deliveries GROUP BY status`,
        )
        .then((rows) => Object.fromEntries(rows.map((r) => [r.status, r.count])));
    expect(await eventually(settled, (by) => by.succeeded === EVENTS, 120_000, 200)).toEqual({
      succeeded: EVENTS,
    });
    // Every event reached the receiver; a delivery in flight at the kill may have come twice.
    expect(seen.size).toBe(EVENTS);
    expect(requests).toBeGreaterThanOrEqual(EVENTS);
    const [{ events, outbox }] = await db.query<Array<{ events: number; outbox: number }>>(
      `SELECT (SELECT count(DISTINCT event_id)::int FROM webhook_deliveries) AS events,
              (SELECT count(*)::int FROM outbox WHERE published_at IS NULL) AS outbox`,
    );
    expect({ events, outbox }).toEqual({ events: EVENTS, outbox: 0 });

    worker.child.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
  });
});
