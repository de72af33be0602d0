import { type Reply, call, createCategory, createTask, registerUser } from '@app/testing';
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
 * A task write and its events are one statement, the events' data built in SQL
 * (taskResourceJson) rather than from the task in JavaScript: it must be the task exactly as the
 * API answers it, for every shape a task takes; a write that fails leaves no event; and of
 * concurrent writers, each event is announced as often as its change happened.
 */
describe('task events, written with the task in one statement', () => {
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
      `SELECT queue, pattern, payload FROM outbox WHERE payload->'data'->>'id' = $1 ORDER BY id`,
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

  it('PATCH announces task.updated with the task as answered, and task.completed once it is done', async () => {
    const user = await registerUser(app);
    const patch = (id: string, body: object) =>
      call(app, { method: 'PATCH', url: `/v1/tasks/${id}`, token: user.accessToken, body });
    const task = await createTask(app, user, { title: 'to do', tags: ['a'] });
    const renamed = await patch(task.id, { title: 'renamed', dueDate: '2031-01-01T00:00:00Z' });
    const done = await patch(task.id, { status: 'done' });
    const again = await patch(task.id, { status: 'done', description: 'still done' });
    expect([renamed.status, done.status, again.status]).toEqual([200, 200, 200]);
    const events = (await eventsOf(task.id)).map((e) => [e.payload.type, e.payload.data]);
    expect(events).toEqual([
      ['task.created', task],
      ['task.updated', renamed.body],
      ['task.updated', done.body],
      ['task.completed', done.body],
      ['task.updated', again.body],
    ]);
  });

  it('of 8 concurrent PATCHes making a task done, each is announced updated, one completed', async () => {
    const user = await registerUser(app);
    const task = await createTask(app, user);
    const replies = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        call<{ version: number }>(app, {
          method: 'PATCH',
          url: `/v1/tasks/${task.id}`,
          token: user.accessToken,
          body: { status: 'done', title: `writer ${i}` },
        }),
      ),
    );
    expect(replies.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect(replies.map((r) => r.body.version).sort((a, b) => a - b)).toEqual([
      2, 3, 4, 5, 6, 7, 8, 9,
    ]);
    const types = (await eventsOf(task.id)).map((e) => e.payload.type);
    expect(types.filter((t) => t === 'task.updated')).toHaveLength(8);
    expect(types.filter((t) => t === 'task.completed')).toHaveLength(1);
  });

  it('DELETE announces task.deleted with the id; a refused one (412, 404) announces nothing', async () => {
    const user = await registerUser(app);
    const task = await createTask(app, user);
    const remove = (id: string, headers: Record<string, string> = {}) =>
      call(app, { method: 'DELETE', url: `/v1/tasks/${id}`, token: user.accessToken, headers });
    const stale = await remove(task.id, { 'if-match': '"v2"' });
    expect(stale.status).toBe(412);
    expect((await eventsOf(task.id)).map((e) => e.payload.type)).toEqual(['task.created']);
    expect((await remove(task.id, { 'if-match': '"v1"' })).status).toBe(204);
    expect((await remove(task.id)).status).toBe(404);
    const events = await eventsOf(task.id);
    expect(events.map((e) => [e.payload.type, e.payload.data])).toEqual([
      ['task.created', task],
      ['task.deleted', { id: task.id }],
    ]);
  });
});
