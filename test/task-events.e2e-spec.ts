import { type Reply, call, createCategory, registerUser } from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { startApi } from './app';
import { dropDatabase, ownDatabase } from './databases';

const { name: DATABASE, url: DATABASE_URL } = ownDatabase('task_events');

interface OutboxRow {
  queue: string;
  pattern: string;
  payload: { id: string; type: string; createdAt: string; userId: string; data: unknown };
}

/**
 * A task and its task.created event are written by one statement, the event's data built in SQL
 * (taskResourceJson) rather than from the task in JavaScript: it must be the task exactly as the
 * API answers it, for every shape a task takes, and a create that fails must leave neither.
 */
describe('the task.created event, written with the task in one statement', () => {
  let app: NestFastifyApplication;
  let db: DataSource;

  beforeAll(async () => {
    app = await startApi({ DATABASE_URL });
    db = app.get(DataSource);
  });

  afterAll(async () => {
    await app.close();
    await dropDatabase(DATABASE);
  });

  const eventsOf = (taskId: string) =>
    db.query<OutboxRow[]>(
      `SELECT queue, pattern, payload FROM outbox WHERE payload->'data'->>'id' = $1`,
      [taskId],
    );

  it('carries the task as the API answers it, whatever its fields', async () => {
    const user = await registerUser(app);
    const category = await createCategory(app, user, { name: 'events' });
    const bodies: Record<string, unknown>[] = [
      { title: 'only a title' },
      {
        title: '  every field  ',
        description: 'línea 1\nline "2" \\ ✓',
        status: 'in_progress',
        priority: 'high',
        dueDate: '2031-06-30T23:59:59.999+02:00',
        categoryId: category.id,
        tags: ['b', 'a', 'b '],
      },
      { title: 'an early year', dueDate: '0100-02-28T12:00:00.000Z', description: null },
      { title: 'the last year', dueDate: '9999-12-31T23:59:59.999Z', tags: [] },
      { title: 'a due date without milliseconds', dueDate: '2030-01-01T00:00:00Z' },
    ];
    for (const body of bodies) {
      const before = new Date().toISOString();
      const created = await call(app, {
        method: 'POST',
        url: '/v1/tasks',
        token: user.accessToken,
        body,
      });
      expect(created.status).toBe(201);
      const events = await eventsOf(created.body.id);
      expect(events).toHaveLength(1);
      const [{ queue, pattern, payload }] = events;
      expect(payload.data).toEqual(created.body);
      const read = await call(app, {
        method: 'GET',
        url: `/v1/tasks/${created.body.id}`,
        token: user.accessToken,
      });
      expect(payload.data).toEqual(read.body);
      expect(payload).toMatchObject({ type: 'task.created', userId: user.id });
      expect(payload.createdAt >= before).toBe(true);
      expect(queue).toMatch(/task-events$/);
      expect(pattern).toBe('task.event');
    }
  });

  it('a create that fails (another user’s category) leaves no task and no event', async () => {
    const owner = await registerUser(app);
    const other = await registerUser(app);
    const category = await createCategory(app, owner, { name: 'not yours' });
    const title = `refused-${randomUUID()}`;
    const refused = await call(app, {
      method: 'POST',
      url: '/v1/tasks',
      token: other.accessToken,
      body: { title, categoryId: category.id },
    });
    expect(refused.status).toBe(400);
    const [{ tasks, events }] = await db.query<Array<{ tasks: number; events: number }>>(
      `SELECT (SELECT count(*)::int FROM tasks WHERE title = $1) AS tasks,
              (SELECT count(*)::int FROM outbox WHERE payload->'data'->>'title' = $1) AS events`,
      [title],
    );
    expect({ tasks, events }).toEqual({ tasks: 0, events: 0 });
  });

  it('with an Idempotency-Key: one task and one event, however often it is replayed', async () => {
    const user = await registerUser(app);
    const headers = { 'idempotency-key': randomUUID() };
    const body = { title: 'once', tags: ['x'] };
    const replies: Reply<{ id: string }>[] = [];
    for (let i = 0; i < 3; i += 1) {
      replies.push(
        await call<{ id: string }>(app, {
          method: 'POST',
          url: '/v1/tasks',
          token: user.accessToken,
          body,
          headers,
        }),
      );
    }
    expect(replies.map((r) => r.status)).toEqual([201, 201, 201]);
    expect(new Set(replies.map((r) => r.body.id)).size).toBe(1);
    const events = await eventsOf(replies[0].body.id);
    expect(events.map((e) => e.payload.data)).toEqual([replies[0].body]);
  });
});
