import {
  Client,
  ISO_UTC,
  InvalidField,
  MALFORMED_IDS,
  STRONG_ETAG,
  TestUser,
  UUID,
  createCategory,
  createTask,
  defineResource,
  expectProblem,
  expectValidationError,
  registerClient,
  sharedTests,
} from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomUUID } from 'node:crypto';
import { startApi } from './app';

/** End-to-end: the task routes of CONTRACT §2 and §4, through the real bootstrap and database. */

const DAY = 86_400_000;
const BASE = Date.UTC(2031, 0, 1);
/** A due date `days` after 2031-01-01, as the API writes it. */
const dueIn = (days: number): string => new Date(BASE + days * DAY).toISOString();

interface Task {
  id: string;
  title: string;
  description: string | null;
  status: string;
  priority: string;
  dueDate: string | null;
  categoryId: string | null;
  tags: string[];
  version: number;
  createdAt: string;
  updatedAt: string;
}

const idsOf = (tasks: { id: string }[]): string[] => tasks.map((task) => task.id).sort();

describe('tasks (CONTRACT §2, §4)', () => {
  let app: NestFastifyApplication;
  beforeAll(async () => {
    app = await startApi();
  });
  afterAll(() => app.close());

  const tasks = defineResource<Task>({
    noun: 'task',
    path: '/v1/tasks',
    app: () => app,
    create: createTask,
    // More than the title, so that what is compared and replayed holds an array too.
    body: (n) => ({ title: `task ${n}`, priority: 'high', tags: ['home'] }),
    change: (n) => ({ description: `change ${n}` }),
  });
  const newUser = () => registerClient(app);

  describe('create, read, update, delete', () => {
    it('POST creates a task with the defaults: 201, Location, ETag, Cache-Control: private', async () => {
      const { user, api } = await newUser();
      const created = await tasks.expectCreated(
        api,
        await api.post('/v1/tasks', { title: 'Write the report' }),
      );
      expect(created).toEqual({
        id: expect.stringMatching(UUID),
        title: 'Write the report',
        description: null,
        status: 'todo',
        priority: 'medium',
        dueDate: null,
        categoryId: null,
        tags: [],
        version: 1,
        createdAt: expect.stringMatching(ISO_UTC),
        updatedAt: expect.stringMatching(ISO_UTC),
      });
      await tasks.expectOnly(user, [created]);
    });

    it('POST stores every field, normalised: trimmed title, UTC due date, unique trimmed tags', async () => {
      const { api, user } = await newUser();
      const category = await createCategory(app, user, { name: 'Work' });
      const sent = {
        title: '  Quarterly report  ',
        description: 'Numbers for Q3',
        status: 'in_progress',
        priority: 'urgent',
        dueDate: '2030-05-06T07:08:09+02:00',
        categoryId: category.id,
        tags: [' finance ', 'q3', 'finance'],
      };
      const created = await api.post('/v1/tasks', sent);
      expect(created.status).toBe(201);
      // Every field as sent, but for those normalised.
      expect(created.body).toMatchObject({
        ...sent,
        title: 'Quarterly report',
        dueDate: '2030-05-06T05:08:09.000Z',
        tags: ['finance', 'q3'],
        version: 1,
      });
      expect((await api.get(`/v1/tasks/${created.body.id}`)).body).toEqual(created.body);
    });

    it('accepts the boundaries: 1 and 200 characters of title, 10 000 of description, 20 tags of 50', async () => {
      const { api, user } = await newUser();
      const bodies = [
        { title: 'a' },
        { title: 't'.repeat(200), description: 'd'.repeat(10_000) },
        { title: 'tags', tags: Array.from({ length: 20 }, (_, i) => `${i}`.padStart(50, 'x')) },
        { title: 'date only', dueDate: '2030-01-02' },
        { title: 'nulls', description: null, dueDate: null, categoryId: null },
      ];
      const replies = await Promise.all(bodies.map((body) => api.post('/v1/tasks', body)));
      expect(replies.map((reply) => reply.status)).toEqual(bodies.map(() => 201));
      expect(replies[1].body.title).toHaveLength(200);
      expect(replies[1].body.description).toHaveLength(10_000);
      expect(replies[2].body.tags).toHaveLength(20);
      expect(replies[3].body.dueDate).toBe('2030-01-02T00:00:00.000Z');
      expect(replies[4].body).toMatchObject({ description: null, dueDate: null, categoryId: null });
      expect(idsOf(await tasks.list(user))).toEqual(
        idsOf(replies.map((reply) => reply.body as Task)),
      );
    });

    it('GET /v1/tasks lists the caller’s tasks in { data, nextCursor }, newest first by default', async () => {
      const { api, user } = await newUser();
      const made: Task[] = [];
      for (const title of ['one', 'two', 'three'])
        made.push(await createTask(app, user, { title }));
      const list = await api.get('/v1/tasks');
      expect(list.status).toBe(200);
      expect(list.headers['cache-control']).toBe('private');
      expect(Object.keys(list.body).sort()).toEqual(['data', 'nextCursor']);
      expect(list.body.nextCursor).toBeNull();
      const newestFirst = [...made].sort(
        (a, b) =>
          b.createdAt.localeCompare(a.createdAt) || (b.id < a.id ? -1 : b.id > a.id ? 1 : 0),
      );
      expect(list.body.data).toEqual(newestFirst);
    });

    it('PATCH changes only the fields sent, and bumps version and updatedAt', async () => {
      const { api, user } = await newUser();
      const category = await createCategory(app, user);
      const task: Task = await createTask(app, user, {
        title: 'Before',
        description: 'old',
        dueDate: dueIn(1),
        categoryId: category.id,
        tags: ['a'],
      });

      const renamed = await api.patch(`/v1/tasks/${task.id}`, { title: 'After' });
      expect(renamed.status).toBe(200);
      expect(renamed.body).toEqual({
        ...task,
        title: 'After',
        version: 2,
        updatedAt: expect.stringMatching(ISO_UTC),
      });
      expect(renamed.body.updatedAt >= task.updatedAt).toBe(true);
      expect(renamed.headers['cache-control']).toBe('private');

      const move = {
        status: 'done',
        priority: 'low',
        tags: ['b', 'c'],
        dueDate: '2032-02-03T04:05:06.789Z',
      };
      const moved = await api.patch(`/v1/tasks/${task.id}`, move);
      expect(moved.status).toBe(200);
      expect(moved.body).toMatchObject({
        ...move,
        title: 'After',
        description: 'old',
        categoryId: category.id,
        version: 3,
      });

      const clear = { description: null, dueDate: null, categoryId: null };
      const cleared = await api.patch(`/v1/tasks/${task.id}`, clear);
      expect(cleared.status).toBe(200);
      expect(cleared.body).toMatchObject({ ...clear, version: 4 });
      expect((await api.get(`/v1/tasks/${task.id}`)).body).toEqual(cleared.body);
    });

    sharedTests.deletion(tasks);
  });

  describe('authentication', () => {
    sharedTests.authentication(tasks);
  });

  describe('another user’s tasks are 404, never 403, and stay as they were', () => {
    let category: { id: string };
    const their = sharedTests.ownership(tasks, {
      item: async (owner) => {
        category = await createCategory(app, owner, { name: 'Secret' });
        return tasks.create(owner, {
          title: 'Private plans',
          tags: ['secret'],
          categoryId: category.id,
          dueDate: dueIn(1),
        });
      },
      malformedIds: [...MALFORMED_IDS, 'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz'],
    });

    it('another user’s task never appears in a list, whatever the filter', async () => {
      const { intruderUser } = their;
      const own = await createTask(app, intruderUser, {
        title: 'Private plans too',
        tags: ['secret'],
        dueDate: dueIn(1),
      });
      for (const query of [
        '',
        '&tag=secret',
        '&q=private',
        `&dueBefore=${dueIn(2)}`,
        '&sort=title',
        '&sort=dueDate',
      ]) {
        expect(idsOf(await tasks.list(intruderUser, query))).toEqual([own.id]);
      }
      expect(await tasks.list(intruderUser, `&categoryId=${category.id}`)).toEqual([]);
    });

    it('a task cannot be put into another user’s category', async () => {
      const { intruderUser, intruder } = their;
      const own: Task = await createTask(app, intruderUser);
      expectValidationError(
        await intruder.patch(`/v1/tasks/${own.id}`, { categoryId: category.id }),
        'categoryId',
      );
      expect((await intruder.get(`/v1/tasks/${own.id}`)).body).toEqual(own);
    });
  });

  describe('validation', () => {
    let foreignCategoryId: string;
    beforeAll(async () => {
      const { user: stranger } = await newUser();
      foreignCategoryId = (await createCategory(app, stranger)).id;
    });

    /** Bodies a create or an update must refuse, and the field the refusal names. */
    const invalidFields: InvalidField[] = [
      ['an empty title', () => ({ title: '' }), 'title'],
      ['a blank title', () => ({ title: '   ' }), 'title'],
      ['a 201-character title', () => ({ title: 'a'.repeat(201) }), 'title'],
      ['a numeric title', () => ({ title: 42 }), 'title'],
      ['a null title', () => ({ title: null }), 'title'],
      ['a NUL character in the title', () => ({ title: 'a\u0000b' }), 'title'],
      [
        'a 10 001-character description',
        () => ({ description: 'd'.repeat(10_001) }),
        'description',
      ],
      ['a numeric description', () => ({ description: 7 }), 'description'],
      ['an unknown status', () => ({ status: 'open' }), 'status'],
      ['a null status', () => ({ status: null }), 'status'],
      ['an unknown priority', () => ({ priority: 'critical' }), 'priority'],
      ['an upper-case priority', () => ({ priority: 'HIGH' }), 'priority'],
      ['a null priority', () => ({ priority: null }), 'priority'],
      ['a due date in words', () => ({ dueDate: 'tomorrow' }), 'dueDate'],
      ['an impossible due date', () => ({ dueDate: '2030-02-30T00:00:00Z' }), 'dueDate'],
      ['a 13th month', () => ({ dueDate: '2030-13-01' }), 'dueDate'],
      ['an ISO week date', () => ({ dueDate: '2030-W01-1' }), 'dueDate'],
      ['an ordinal date', () => ({ dueDate: '2030-123' }), 'dueDate'],
      ['year 0', () => ({ dueDate: '0000-06-01T00:00:00Z' }), 'dueDate'],
      ['a due date after 9999 in UTC', () => ({ dueDate: '9999-12-31T23:00:00-05:00' }), 'dueDate'],
      ['epoch milliseconds', () => ({ dueDate: 1_900_000_000_000 }), 'dueDate'],
      ['tags that are not an array', () => ({ tags: 'finance' }), 'tags'],
      ['null tags', () => ({ tags: null }), 'tags'],
      ['21 tags', () => ({ tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }), 'tags'],
      ['an empty tag', () => ({ tags: ['ok', ''] }), 'tags'],
      ['a blank tag', () => ({ tags: ['   '] }), 'tags'],
      ['a 51-character tag', () => ({ tags: ['x'.repeat(51)] }), 'tags'],
      ['a numeric tag', () => ({ tags: [7] }), 'tags'],
      ['a malformed categoryId', () => ({ categoryId: 'nope' }), 'categoryId'],
      ['another user’s categoryId', () => ({ categoryId: foreignCategoryId }), 'categoryId'],
      ['a categoryId that does not exist', () => ({ categoryId: randomUUID() }), 'categoryId'],
      ['an unknown field', () => ({ colour: 'red' }), 'colour'],
      ['a userId (no mass assignment)', () => ({ userId: randomUUID() }), 'userId'],
      ['an id', () => ({ id: randomUUID() }), 'id'],
      ['a version', () => ({ version: 99 }), 'version'],
      ['a createdAt', () => ({ createdAt: '2020-01-01T00:00:00.000Z' }), 'createdAt'],
    ];

    const fixture = sharedTests.validation(tasks, {
      target: { title: 'Target', description: 'unchanged', tags: ['keep'], dueDate: dueIn(3) },
      required: ['title', { priority: 'low' }],
      invalidFields,
    });

    it('reports every invalid field at once', async () => {
      const reply = await fixture.api.post('/v1/tasks', {
        title: '',
        status: 'open',
        priority: 'x',
      });
      expectValidationError(reply, 'title', 'status', 'priority');
    });
  });

  describe('request bodies', () => {
    const fixture = sharedTests.requestBodies(tasks, {
      malformed: [
        ['truncated JSON', '{"title":'],
        ['trailing garbage', '{"title":"x"} x'],
        ['single quotes', "{'title':'x'}"],
        ['an empty body', ''],
        ['a __proto__ key', '{"title":"x","__proto__":{"admin":true}}'],
      ],
      unsupported: [
        ['text/plain', 'title=x'],
        ['application/x-www-form-urlencoded', 'title=x'],
        ['application/xml', '<task><title>x</title></task>'],
      ],
      notObjects: [
        ['an array', [{ title: 'x' }]],
        ['a string', 'x'],
        ['a number', 42],
        ['null', null],
      ],
    });

    it('a body just under 1 MiB is read (and here refused for its description)', async () => {
      const big = JSON.stringify({ title: 'x', description: 'd'.repeat(1024 * 1024 - 100) });
      expect(Buffer.byteLength(big)).toBeLessThan(1024 * 1024);
      expectValidationError(await fixture.api.post('/v1/tasks', big), 'description');
    });

    it('POST with no body at all is 400', async () => {
      const reply = await fixture.api.post('/v1/tasks', undefined);
      expectProblem(reply, 400, 'VALIDATION_FAILED');
    });
  });

  describe('problem details', () => {
    it('requestId is the X-Request-ID header: the client’s when sane, else a new UUID', async () => {
      const { api } = await newUser();
      const missing = `/v1/tasks/${randomUUID()}`;

      const echoed = await api.get(missing, { 'x-request-id': 'trace-123.abc:9' });
      expect(expectProblem(echoed, 404, 'NOT_FOUND').requestId).toBe('trace-123.abc:9');
      expect(echoed.headers['x-request-id']).toBe('trace-123.abc:9');

      const replaced = await api.get(missing, { 'x-request-id': 'no spaces <allowed>' });
      expect(expectProblem(replaced, 404, 'NOT_FOUND').requestId).toMatch(UUID);

      const generated = await api.get(missing);
      expect(expectProblem(generated, 404, 'NOT_FOUND').requestId).toMatch(UUID);
      expect(generated.body.requestId).not.toBe(replaced.body.requestId);
    });

    it('carries type, title, status, detail, instance (the path, without the query) and code', async () => {
      const { api } = await newUser();
      const reply = await api.get('/v1/tasks?status=open');
      const problem = expectValidationError(reply, 'status');
      expect(problem).toMatchObject({
        type: expect.stringContaining('validation-failed'),
        title: 'Validation failed',
        status: 400,
        instance: '/v1/tasks',
      });
      expect(reply.headers['x-request-id']).toBe(problem.requestId);
    });

    it('a successful response carries X-Request-ID too', async () => {
      const { api } = await newUser();
      expect((await api.get('/v1/tasks')).headers['x-request-id']).toMatch(UUID);
      expect((await api.get('/v1/tasks', { 'x-request-id': 'abc' })).headers['x-request-id']).toBe(
        'abc',
      );
    });
  });

  describe('filters', () => {
    interface Seed {
      title: string;
      description?: string | null;
      status: string;
      priority: string;
      dueDate: string | null;
      tags: string[];
      category?: 'work' | 'home';
    }
    const seeds: Record<string, Seed> = {
      report: {
        title: 'Quarterly REPORT',
        description: 'numbers for the board',
        status: 'todo',
        priority: 'high',
        dueDate: dueIn(1),
        tags: ['finance', 'q3'],
        category: 'work',
      },
      invoices: {
        title: 'Pay invoices',
        status: 'in_progress',
        priority: 'urgent',
        dueDate: dueIn(2),
        tags: ['finance'],
        category: 'work',
      },
      gym: {
        title: 'Gym',
        description: 'leg day, then a Report on progress',
        status: 'done',
        priority: 'low',
        dueDate: dueIn(3),
        tags: ['health'],
        category: 'home',
      },
      late: {
        title: 'Audit',
        status: 'todo',
        priority: 'high',
        dueDate: dueIn(10),
        tags: ['q3'],
        category: 'work',
      },
      percent: { title: '100% done', status: 'done', priority: 'medium', dueDate: null, tags: [] },
      thousand: { title: '1000 done', status: 'done', priority: 'medium', dueDate: null, tags: [] },
      snake: {
        title: 'snake_case rename',
        status: 'todo',
        priority: 'low',
        dueDate: null,
        tags: [],
      },
      snakeX: {
        title: 'snakeXcase rename',
        status: 'todo',
        priority: 'low',
        dueDate: null,
        tags: ['ideas'],
      },
      backslash: {
        title: 'clean C:\\temp',
        status: 'todo',
        priority: 'medium',
        dueDate: null,
        tags: ['ideas'],
      },
    };
    let user: TestUser;
    let api: Client;
    const ids: Record<string, string> = {};
    const categories: Record<string, string> = {};

    beforeAll(async () => {
      ({ user, api } = await newUser());
      categories.work = (await createCategory(app, user, { name: 'work' })).id;
      categories.home = (await createCategory(app, user, { name: 'home' })).id;
      await Promise.all(
        Object.entries(seeds).map(async ([key, { category, ...seed }]) => {
          const task = await createTask(app, user, {
            ...seed,
            categoryId: category ? categories[category] : null,
          });
          ids[key] = task.id;
        }),
      );
      // Another user with tasks that match every filter: none may ever show up.
      const { user: other } = await newUser();
      const theirs = await createCategory(app, other, { name: 'work' });
      await Promise.all(
        Object.values(seeds).map(({ category, ...seed }) =>
          createTask(app, other, { ...seed, categoryId: category ? theirs.id : null }),
        ),
      );
    });

    /** The list for `query` holds exactly the seeds `expected` names (and is not trivial). */
    async function expectFilter(query: string, expected: string[]): Promise<void> {
      expect(expected.length).toBeGreaterThan(0);
      expect(expected.length).toBeLessThan(Object.keys(seeds).length);
      const found = await tasks.list(user, query);
      const byId = Object.fromEntries(Object.entries(ids).map(([key, id]) => [id, key]));
      expect(found.map((task) => byId[task.id] ?? task.id).sort()).toEqual([...expected].sort());
    }
    const keysWhere = (predicate: (seed: Seed) => boolean): string[] =>
      Object.entries(seeds)
        .filter(([, seed]) => predicate(seed))
        .map(([key]) => key);

    it.each(['todo', 'in_progress', 'done'])('status=%s', async (status) => {
      await expectFilter(
        `&status=${status}`,
        keysWhere((seed) => seed.status === status),
      );
    });

    it.each(['low', 'medium', 'high', 'urgent'])('priority=%s', async (priority) => {
      await expectFilter(
        `&priority=${priority}`,
        keysWhere((seed) => seed.priority === priority),
      );
    });

    it('categoryId', async () => {
      await expectFilter(`&categoryId=${categories.work}`, ['report', 'invoices', 'late']);
      await expectFilter(`&categoryId=${categories.home}`, ['gym']);
      expect(await tasks.list(user, `&categoryId=${randomUUID()}`)).toEqual([]);
    });

    it('tag', async () => {
      await expectFilter('&tag=finance', ['report', 'invoices']);
      await expectFilter('&tag=q3', ['report', 'late']);
      await expectFilter('&tag=ideas', ['snakeX', 'backslash']);
      expect(await tasks.list(user, '&tag=fin')).toEqual([]);
    });

    it('dueBefore and dueAfter are strict, and leave out tasks without a due date', async () => {
      await expectFilter(`&dueBefore=${dueIn(2)}`, ['report']);
      await expectFilter(`&dueAfter=${dueIn(2)}`, ['gym', 'late']);
      await expectFilter(`&dueAfter=${dueIn(1)}&dueBefore=${dueIn(10)}`, ['invoices', 'gym']);
      await expectFilter(`&dueBefore=${encodeURIComponent('2031-01-03T00:00:00.001+00:00')}`, [
        'report',
        'invoices',
      ]);
      await expectFilter('&dueAfter=2031-01-03', ['gym', 'late']);
    });

    it('q: case-insensitive substring of the title or the description', async () => {
      await expectFilter('&q=report', ['report', 'gym']);
      await expectFilter('&q=REPORT', ['report', 'gym']);
      await expectFilter('&q=rTeRl', ['report']);
      await expectFilter('&q=THE%20BOARD', ['report']);
      await expectFilter('&q=voice', ['invoices']);
      await expectFilter('&q=100', ['percent', 'thousand']);
    });

    it('q: % and _ and \\ are literal characters, not wildcards', async () => {
      await expectFilter(`&q=${encodeURIComponent('100%')}`, ['percent']);
      await expectFilter(`&q=${encodeURIComponent('%')}`, ['percent']);
      await expectFilter(`&q=${encodeURIComponent('snake_case')}`, ['snake']);
      await expectFilter(`&q=${encodeURIComponent('_')}`, ['snake']);
      await expectFilter(`&q=${encodeURIComponent('C:\\temp')}`, ['backslash']);
      await expectFilter(`&q=${encodeURIComponent('\\')}`, ['backslash']);
      expect(await tasks.list(user, `&q=${encodeURIComponent('%%%')}`)).toEqual([]);
    });

    it('filters combine (AND)', async () => {
      await expectFilter('&status=todo&priority=high', ['report', 'late']);
      await expectFilter('&status=todo&priority=high&tag=q3&q=quarterly', ['report']);
      await expectFilter(`&categoryId=${categories.work}&status=in_progress`, ['invoices']);
      await expectFilter(`&tag=finance&dueAfter=${dueIn(1)}`, ['invoices']);
      await expectFilter('&status=done&q=done', ['percent', 'thousand']);
      expect(await tasks.list(user, '&status=done&tag=finance')).toEqual([]);
    });

    it('filters keep the requested sort', async () => {
      const list = await api.get('/v1/tasks?tag=finance&sort=-priority');
      expect(list.status).toBe(200);
      expect(list.body.data.map((task: Task) => task.id)).toEqual([ids.invoices, ids.report]);
    });

    it.each([
      ['status=open', 'status'],
      ['status=todo&status=done', 'status'],
      ['priority=critical', 'priority'],
      ['categoryId=nope', 'categoryId'],
      ['tag=', 'tag'],
      [`tag=${'x'.repeat(51)}`, 'tag'],
      ['dueBefore=tomorrow', 'dueBefore'],
      ['dueBefore=1', 'dueBefore'],
      ['dueAfter=2031-02-30', 'dueAfter'],
      ['dueAfter=2031-W01-1', 'dueAfter'],
      ['q=', 'q'],
      [`q=${'q'.repeat(201)}`, 'q'],
      ['q=a%00b', 'q'],
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=-1', 'limit'],
      ['limit=abc', 'limit'],
      ['limit=1.5', 'limit'],
      ['sort=bogus', 'sort'],
      ['sort=-bogus', 'sort'],
      ['sort=id', 'sort'],
      ['sort=--title', 'sort'],
      ['sort=Title', 'sort'],
      ['owner=me', 'owner'],
      ['userId=x', 'userId'],
      [`cursor=${'c'.repeat(1025)}`, 'cursor'],
    ])('GET /v1/tasks?%s is 400 VALIDATION_FAILED naming %s', async (query, field) => {
      expectValidationError(await api.get(`/v1/tasks?${query}`), field);
    });
  });

  describe('page size', () => {
    let user: TestUser;
    let api: Client;
    let all: Task[];

    beforeAll(async () => {
      ({ user, api } = await newUser());
      // Titles from [a-z0-9] (the same order under any collation), with duplicates.
      await Promise.all(
        Array.from({ length: 25 }, (_, i) => createTask(app, user, { title: `p${i % 10}` })),
      );
      all = await tasks.list(user);
      expect(all).toHaveLength(25);
    });

    it('limit defaults to 20', async () => {
      const page = await api.get('/v1/tasks');
      expect(page.body.data).toHaveLength(20);
      expect(page.body.nextCursor).toEqual(expect.any(String));
      const rest = await api.get(`/v1/tasks?cursor=${page.body.nextCursor}`);
      expect(rest.body.data).toHaveLength(5);
      expect(rest.body.nextCursor).toBeNull();
      expect(idsOf([...page.body.data, ...rest.body.data])).toEqual(idsOf(all));
    });

    it('limit=N returns N and a cursor while more remain; no empty last page', async () => {
      const exact = await api.get('/v1/tasks?limit=25');
      expect(exact.body.data).toHaveLength(25);
      expect(exact.body.nextCursor).toBeNull();
      const one = await api.get('/v1/tasks?limit=1');
      expect(one.body.data).toHaveLength(1);
      expect(one.body.nextCursor).toEqual(expect.any(String));
      const most = await api.get('/v1/tasks?limit=100');
      expect(most.body.data).toHaveLength(25);
      expect(most.body.nextCursor).toBeNull();
      const next = await api.get('/v1/tasks?limit=24');
      const last = await api.get(`/v1/tasks?limit=24&cursor=${next.body.nextCursor}`);
      expect(last.body.data).toHaveLength(1);
      expect(last.body.nextCursor).toBeNull();
    });

    it('a cursor still works after the task it points at is deleted', async () => {
      const first = await api.get('/v1/tasks?sort=title&limit=10');
      const pointedAt: Task = first.body.data[9];
      expect((await api.delete(`/v1/tasks/${pointedAt.id}`)).status).toBe(204);
      const second = await api.get(`/v1/tasks?sort=title&limit=10&cursor=${first.body.nextCursor}`);
      expect(second.status).toBe(200);
      const expected = all
        .filter((task) => task.id !== pointedAt.id)
        .sort((a, b) => (a.title < b.title ? -1 : a.title > b.title ? 1 : a.id < b.id ? -1 : 1))
        .slice(9, 19);
      expect(idsOf(second.body.data)).toEqual(idsOf(expected));
      all = all.filter((task) => task.id !== pointedAt.id);
    });

    it('a tampered cursor is 400 INVALID_CURSOR', async () => {
      const real: string = (await api.get('/v1/tasks?sort=title&limit=2')).body.nextCursor;
      const payload = JSON.parse(Buffer.from(real, 'base64url').toString('utf8'));
      const forge = (value: unknown) =>
        Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
      const tampered = [
        'garbage!!',
        real.slice(0, -4),
        Buffer.from('not json').toString('base64url'),
        forge(null),
        forge([payload]),
        forge({ ...payload, id: 'nope' }),
        forge({ ...payload, id: undefined }),
        forge({ ...payload, v: 42 }),
        forge({ ...payload, v: null }),
        forge({ ...payload, v: 'a\u0000b' }),
        forge({ ...payload, s: undefined }),
      ];
      for (const cursor of tampered) {
        const reply = await api.get(
          `/v1/tasks?sort=title&limit=2&cursor=${encodeURIComponent(cursor)}`,
        );
        expectProblem(reply, 400, 'INVALID_CURSOR');
      }
    });

    it.each([
      ['-createdAt', { v: 'yesterday' }],
      ['createdAt', { v: '2031-01-01' }],
      ['dueDate', { v: '2031-02-30T00:00:00.000Z' }],
      ['priority', { v: 'critical' }],
      ['-priority', { v: 7 }],
    ])(
      'a forged cursor value for sort=%s is 400 INVALID_CURSOR, never a 500',
      async (sort, change) => {
        const real: string = (await api.get(`/v1/tasks?sort=${sort}&limit=2`)).body.nextCursor;
        const payload = JSON.parse(Buffer.from(real, 'base64url').toString('utf8'));
        const forged = Buffer.from(JSON.stringify({ ...payload, ...change })).toString('base64url');
        const reply = await api.get(`/v1/tasks?sort=${sort}&limit=2&cursor=${forged}`);
        expectProblem(reply, 400, 'INVALID_CURSOR');
      },
    );

    it.each([
      ['title', '-title'],
      ['title', 'priority'],
      ['-createdAt', 'createdAt'],
      ['dueDate', '-dueDate'],
      ['priority', 'title'],
    ])('a cursor made for sort=%s is 400 INVALID_CURSOR with sort=%s', async (made, used) => {
      const cursor: string = (await api.get(`/v1/tasks?sort=${made}&limit=2`)).body.nextCursor;
      expect(cursor).toEqual(expect.any(String));
      expectProblem(
        await api.get(`/v1/tasks?sort=${used}&limit=2&cursor=${cursor}`),
        400,
        'INVALID_CURSOR',
      );
    });
  });

  describe('keyset pagination: every sort, with inserts between pages', () => {
    const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];
    const PRIORITIES = ['low', 'medium', 'high', 'urgent'];
    const RANK: Record<string, number> = { low: 0, medium: 1, high: 2, urgent: 3 };
    const PAGE = 7;
    let user: TestUser;
    let api: Client;
    /** Every task of the user, as this test knows it (not as the API lists it). */
    const known = new Set<string>();

    beforeAll(async () => {
      ({ user, api } = await newUser());
      // Titles from [a-z0-9] only, so JavaScript's order is the database's under any collation.
      // Many duplicate titles, priorities and due dates, and one due date in five null.
      const specs = Array.from({ length: 250 }, (_, i) => ({
        title: `${WORDS[i % WORDS.length]}${i % 3}`,
        priority: PRIORITIES[(i * 3 + (i >> 4)) % 4],
        dueDate: i % 5 === 0 ? null : dueIn(i % 17),
      }));
      for (let i = 0; i < specs.length; i += 25) {
        const batch = await Promise.all(
          specs.slice(i, i + 25).map((spec) => createTask(app, user, spec)),
        );
        for (const task of batch) known.add(task.id);
      }
    });

    const compareValues = (x: string | number, y: string | number): number =>
      x < y ? -1 : x > y ? 1 : 0;

    /** The API's order for `sort`: the sort key (dueDate nulls last either way), then the id. */
    function compare(sort: string, a: Task, b: Task): number {
      const field = sort.replace(/^-/, '');
      const direction = sort.startsWith('-') ? -1 : 1;
      const key = (task: Task): string | number | null => {
        switch (field) {
          case 'createdAt':
            return task.createdAt;
          case 'dueDate':
            return task.dueDate;
          case 'priority':
            return RANK[task.priority];
          default:
            return task.title;
        }
      };
      const ka = key(a);
      const kb = key(b);
      if (ka === null && kb !== null) return 1;
      if (kb === null && ka !== null) return -1;
      const byKey = ka === null || kb === null ? 0 : compareValues(ka, kb);
      return direction * (byKey || compareValues(a.id, b.id));
    }

    it('limit=100 is the largest page', async () => {
      const page = await api.get('/v1/tasks?limit=100');
      expect(page.body.data).toHaveLength(100);
      expect(page.body.nextCursor).toEqual(expect.any(String));
    });

    const sorts = ['createdAt', 'dueDate', 'priority', 'title'].flatMap((key) => [key, `-${key}`]);
    it.each(sorts)('sort=%s: every task once, none twice, in order', async (sort) => {
      const before = new Set(known);
      const inserted = new Set<string>();
      let insertRound = 0;
      const { items, pages } = await tasks.listAll(
        user,
        `sort=${sort}&limit=${PAGE}`,
        async (pageNumber) => {
          if (pageNumber > 6) return;
          // New tasks that sort first, last and in the middle, whatever the sort.
          insertRound += 1;
          const made = await Promise.all([
            createTask(app, user, {
              title: `aaa${insertRound}`,
              priority: 'low',
              dueDate: dueIn(-100),
            }),
            createTask(app, user, {
              title: `zzz${insertRound}`,
              priority: 'urgent',
              dueDate: null,
            }),
            createTask(app, user, { title: `delta1`, priority: 'medium', dueDate: dueIn(8) }),
          ]);
          for (const task of made) {
            inserted.add(task.id);
            known.add(task.id);
          }
        },
      );
      expect(insertRound).toBe(6);

      const ids = items.map((task) => task.id);
      expect(ids.length - new Set(ids).size).toBe(0); // no duplicates
      const seen = new Set(ids);
      expect([...before].filter((id) => !seen.has(id))).toEqual([]); // no gaps
      expect(ids.filter((id) => !before.has(id) && !inserted.has(id))).toEqual([]);

      for (const page of pages.slice(0, -1)) expect(page).toHaveLength(PAGE);
      expect(pages[pages.length - 1].length).toBeGreaterThan(0);
      expect(pages[pages.length - 1].length).toBeLessThanOrEqual(PAGE);

      const outOfOrder = items
        .slice(1)
        .map((task, i) => [items[i], task])
        .filter(([a, b]) => compare(sort, a, b) >= 0)
        .map(([a, b]) => `${JSON.stringify(a)} !< ${JSON.stringify(b)}`);
      expect(outOfOrder).toEqual([]);

      if (sort.endsWith('dueDate')) {
        const firstNull = items.findIndex((task) => task.dueDate === null);
        expect(firstNull).toBeGreaterThan(0);
        expect(items.slice(firstNull).every((task) => task.dueDate === null)).toBe(true);
        expect(items.length - firstNull).toBeGreaterThanOrEqual(50);
      }
    });
  });

  describe('ETag and conditional requests', () => {
    const fixture = sharedTests.conditionalRequests(tasks, {
      staleWrites: [['PATCH'], ['DELETE']],
      currentInAList: true,
      concurrentWriters: [2, 5],
    });

    it.each([
      ['a weak tag', (etag: string) => `W/${etag}`],
      ['a made-up tag', () => '"made-up"'],
      ['an unquoted tag', (etag: string) => etag.replace(/"/g, '')],
    ])('If-Match with %s is 412 (strong comparison)', async (_name, header) => {
      const { user, api } = fixture;
      const task: Task = await createTask(app, user);
      const etag = String((await api.get(`/v1/tasks/${task.id}`)).headers.etag);
      expectProblem(
        await api.patch(`/v1/tasks/${task.id}`, { title: 'x' }, { 'if-match': header(etag) }),
        412,
        'PRECONDITION_FAILED',
      );
      expect((await api.get(`/v1/tasks/${task.id}`)).body).toEqual(task);
    });

    it('the ETag of a 201 is the one GET returns', async () => {
      const { api } = fixture;
      const created = await api.post('/v1/tasks', { title: 'tagged' });
      const etag = String(created.headers.etag);
      expect(etag).toMatch(STRONG_ETAG);
      expect(
        (await api.get(`/v1/tasks/${created.body.id}`, { 'if-none-match': etag })).status,
      ).toBe(304);
    });

    it('a concurrent PATCH and DELETE with the same If-Match never both succeed', async () => {
      const { user, api } = fixture;
      const task: Task = await createTask(app, user);
      const etag = String((await api.get(`/v1/tasks/${task.id}`)).headers.etag);
      const [patched, deleted] = await Promise.all([
        api.patch(`/v1/tasks/${task.id}`, { title: 'racing' }, { 'if-match': etag }),
        api.delete(`/v1/tasks/${task.id}`, { 'if-match': etag }),
      ]);
      const outcome = [patched.status, deleted.status];
      expect([
        [200, 412],
        [404, 204],
      ]).toContainEqual(outcome);
      expect((await api.get(`/v1/tasks/${task.id}`)).status).toBe(
        deleted.status === 204 ? 404 : 200,
      );
    });
  });

  describe('Idempotency-Key on POST /v1/tasks', () => {
    sharedTests.idempotencyKeys(tasks, { concurrentRequests: 8 });

    it('a request that failed keeps no key: the corrected retry creates', async () => {
      const { user, api } = await newUser();
      const { user: stranger } = await newUser();
      const foreign = await createCategory(app, stranger);
      const key = randomUUID();
      const failed = await api.post(
        '/v1/tasks',
        { title: 'Filed', categoryId: foreign.id },
        { 'idempotency-key': key },
      );
      expectValidationError(failed, 'categoryId');
      expect(await tasks.list(user)).toEqual([]);
      const retry = await api.post('/v1/tasks', { title: 'Filed' }, { 'idempotency-key': key });
      expect(retry.status).toBe(201);
      expect(retry.headers['idempotent-replayed']).toBeUndefined();
      expect(idsOf(await tasks.list(user))).toEqual([retry.body.id]);
    });

    it('without a key, two identical POSTs create two tasks', async () => {
      const { user, api } = await newUser();
      const one = await api.post('/v1/tasks', { title: 'Twice' });
      const two = await api.post('/v1/tasks', { title: 'Twice' });
      expect(two.body.id).not.toBe(one.body.id);
      expect(await tasks.list(user)).toHaveLength(2);
    });

    it.each([
      ['too long', 'k'.repeat(256)],
      ['with a space', 'has space'],
      ['with non-ASCII', 'clé'],
    ])('a key %s is 400 and creates nothing', async (_name, key) => {
      const { user, api } = await newUser();
      const reply = await api.post('/v1/tasks', { title: 'x' }, { 'idempotency-key': key });
      expectValidationError(reply, 'Idempotency-Key');
      expect(await tasks.list(user)).toEqual([]);
    });
  });

  describe('Cache-Control: private and Location', () => {
    sharedTests.privateResponses(tasks, {
      status: 400,
      send: (api) => api.get('/v1/tasks?status=bogus'),
    });
  });
});
