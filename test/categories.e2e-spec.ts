import {
  Client,
  ISO_UTC,
  InvalidField,
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

/** End-to-end: the category routes of CONTRACT §2 and §4, through the real bootstrap and database. */

interface Category {
  id: string;
  name: string;
  color: string | null;
  version: number;
  createdAt: string;
  updatedAt: string;
}

const idsOf = (items: { id: string }[]): string[] => items.map((item) => item.id).sort();
const compareValues = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0);

describe('categories (CONTRACT §2, §4)', () => {
  let app: NestFastifyApplication;
  beforeAll(async () => {
    app = await startApi();
  });
  afterAll(() => app.close());

  const categories = defineResource<Category>({
    noun: 'category',
    path: '/v1/categories',
    app: () => app,
    create: createCategory,
    body: (n) => ({ name: `category ${n}` }),
    // A colour no other change has given: #000001, #000002, ...
    change: (n) => ({ color: `#${n.toString(16).padStart(6, '0')}` }),
  });
  const newUser = () => registerClient(app);

  describe('create, read, update, delete', () => {
    it('POST creates a category: 201, Location, ETag, Cache-Control: private', async () => {
      const { user, api } = await newUser();
      const created = await categories.expectCreated(
        api,
        await api.post('/v1/categories', { name: '  Work  ', color: '#3b82f6' }),
      );
      expect(created).toEqual({
        id: expect.stringMatching(UUID),
        name: 'Work',
        color: '#3b82f6',
        version: 1,
        createdAt: expect.stringMatching(ISO_UTC),
        updatedAt: expect.stringMatching(ISO_UTC),
      });
      await categories.expectOnly(user, [created]);
    });

    it('color is optional and null by default', async () => {
      const { api } = await newUser();
      const plain = await api.post('/v1/categories', { name: 'Plain' });
      expect(plain.status).toBe(201);
      expect(plain.body.color).toBeNull();
      const explicit = await api.post('/v1/categories', { name: 'Explicit', color: null });
      expect(explicit.status).toBe(201);
      expect(explicit.body.color).toBeNull();
    });

    it('GET /v1/categories lists the caller’s categories by name in { data, nextCursor }', async () => {
      const { user, api } = await newUser();
      for (const name of ['delta', 'alpha', 'charlie', 'bravo']) {
        await createCategory(app, user, { name });
      }
      const list = await api.get('/v1/categories');
      expect(list.status).toBe(200);
      expect(list.headers['cache-control']).toBe('private');
      expect(Object.keys(list.body).sort()).toEqual(['data', 'nextCursor']);
      expect(list.body.data.map((category: Category) => category.name)).toEqual([
        'alpha',
        'bravo',
        'charlie',
        'delta',
      ]);
      expect(list.body.nextCursor).toBeNull();
    });

    it('PATCH changes only the fields sent, and bumps version and updatedAt', async () => {
      const { api, user } = await newUser();
      const category: Category = await createCategory(app, user, {
        name: 'Home',
        color: '#00ff00',
      });
      const renamed = await api.patch(`/v1/categories/${category.id}`, { name: '  House ' });
      expect(renamed.status).toBe(200);
      expect(renamed.body).toEqual({
        ...category,
        name: 'House',
        version: 2,
        updatedAt: expect.stringMatching(ISO_UTC),
      });
      expect(renamed.body.updatedAt >= category.updatedAt).toBe(true);
      expect(renamed.headers['cache-control']).toBe('private');

      const recoloured = await api.patch(`/v1/categories/${category.id}`, { color: '#ABCDEF' });
      expect(recoloured.body).toMatchObject({ name: 'House', color: '#ABCDEF', version: 3 });
      const cleared = await api.patch(`/v1/categories/${category.id}`, { color: null });
      expect(cleared.status).toBe(200);
      expect(cleared.body).toMatchObject({ name: 'House', color: null, version: 4 });
      expect((await api.get(`/v1/categories/${category.id}`)).body).toEqual(cleared.body);
    });

    sharedTests.deletion(categories);
  });

  describe('authentication', () => {
    sharedTests.authentication(categories);
  });

  describe('another user’s categories are 404, never 403, and stay as they were', () => {
    const their = sharedTests.ownership(categories, {
      item: (owner) => createCategory(app, owner, { name: 'Secret', color: '#000000' }),
    });

    it('another user’s category never appears in a list, whatever the sort', async () => {
      const own = await createCategory(app, their.intruderUser, { name: 'Secret' });
      for (const sort of ['name', '-name', 'createdAt', '-createdAt']) {
        expect(idsOf(await categories.list(their.intruderUser, `&sort=${sort}`))).toEqual([own.id]);
      }
    });

    it('a task cannot be filed under another user’s category', async () => {
      const { intruder, item } = their;
      const before = await intruder.get('/v1/tasks');
      const reply = await intruder.post('/v1/tasks', { title: 'x', categoryId: item.id });
      expectValidationError(reply, 'categoryId');
      expect((await intruder.get('/v1/tasks')).body).toEqual(before.body);
    });
  });

  describe('validation', () => {
    const invalidFields: InvalidField[] = [
      ['an empty name', { name: '' }, 'name'],
      ['a blank name', { name: '   ' }, 'name'],
      ['a 101-character name', { name: 'n'.repeat(101) }, 'name'],
      ['a numeric name', { name: 12 }, 'name'],
      ['a null name', { name: null }, 'name'],
      ['a NUL character in the name', { name: 'a\u0000b' }, 'name'],
      ['a colour name', { color: 'red' }, 'color'],
      ['a short hex colour', { color: '#fff' }, 'color'],
      ['a hex colour with a bad digit', { color: '#12345g' }, 'color'],
      ['a hex colour without #', { color: '123456' }, 'color'],
      ['a numeric colour', { color: 123456 }, 'color'],
      ['an unknown field', { icon: 'star' }, 'icon'],
      ['a userId (no mass assignment)', { userId: randomUUID() }, 'userId'],
      ['an id', { id: randomUUID() }, 'id'],
      ['a version', { version: 9 }, 'version'],
    ];

    sharedTests.validation(categories, {
      target: { name: 'Target', color: '#123456' },
      required: ['name', { color: '#ffffff' }],
      invalidFields,
    });

    it('accepts the boundaries: 1 and 100 characters of name, upper-case hex', async () => {
      const { api: fresh } = await newUser();
      const short = await fresh.post('/v1/categories', { name: 'x' });
      const long = await fresh.post('/v1/categories', { name: 'n'.repeat(100), color: '#ABCDEF' });
      expect([short.status, long.status]).toEqual([201, 201]);
      expect(long.body.name).toHaveLength(100);
    });
  });

  describe('request bodies', () => {
    sharedTests.requestBodies(categories, {
      malformed: [
        ['truncated JSON', '{"name":'],
        ['trailing garbage', '{"name":"x"} x'],
        ['an empty body', ''],
      ],
      unsupported: [['text/plain', 'name=x']],
      notObjects: [['an array', [{ name: 'x' }]]],
    });
  });

  describe('names are unique per user, ignoring case', () => {
    let user: TestUser;
    let api: Client;
    let work: Category;
    let home: Category;

    beforeAll(async () => {
      ({ user, api } = await newUser());
      work = await createCategory(app, user, { name: 'Work' });
      home = await createCategory(app, user, { name: 'Home' });
    });

    it.each(['Work', 'WORK', 'work', '  wOrK  '])(
      'POST %p is 409 CATEGORY_NAME_TAKEN and creates nothing',
      async (name) => {
        const reply = await api.post('/v1/categories', { name });
        expectProblem(reply, 409, 'CATEGORY_NAME_TAKEN');
        expect(idsOf(await categories.list(user))).toEqual(idsOf([work, home]));
      },
    );

    it.each(['Work', 'WORK', ' work '])(
      'PATCH to %p is 409 CATEGORY_NAME_TAKEN and changes nothing',
      async (name) => {
        const reply = await api.patch(`/v1/categories/${home.id}`, { name });
        expectProblem(reply, 409, 'CATEGORY_NAME_TAKEN');
        expect((await api.get(`/v1/categories/${home.id}`)).body).toEqual(home);
      },
    );

    it('a category may be renamed to another case of its own name', async () => {
      const renamed = await api.patch(`/v1/categories/${work.id}`, { name: 'WORK' });
      expect(renamed.status).toBe(200);
      expect(renamed.body).toMatchObject({ name: 'WORK', version: work.version + 1 });
      work = renamed.body;
    });

    it('two users may have a category of the same name', async () => {
      const { user: other, api: theirApi } = await newUser();
      const theirs = await theirApi.post('/v1/categories', { name: 'work' });
      expect(theirs.status).toBe(201);
      expect(theirs.body.name).toBe('work');
      expect(idsOf(await categories.list(other))).toEqual([theirs.body.id]);
      expect(idsOf(await categories.list(user))).toEqual(idsOf([work, home]));
    });

    it('a deleted category’s name is free again', async () => {
      const { api: fresh } = await newUser();
      const first = await fresh.post('/v1/categories', { name: 'Errands' });
      expect((await fresh.delete(`/v1/categories/${first.body.id}`)).status).toBe(204);
      const again = await fresh.post('/v1/categories', { name: 'errands' });
      expect(again.status).toBe(201);
      expect(again.body.id).not.toBe(first.body.id);
    });

    it('concurrent creates of one name: exactly one 201, the rest 409', async () => {
      const { user: fresh, api: freshApi } = await newUser();
      const replies = await Promise.all(
        ['Inbox', 'INBOX', 'inbox', 'Inbox '].map((name) =>
          freshApi.post('/v1/categories', { name }),
        ),
      );
      expect(replies.filter((reply) => reply.status === 201)).toHaveLength(1);
      for (const reply of replies.filter((r) => r.status !== 201)) {
        expectProblem(reply, 409, 'CATEGORY_NAME_TAKEN');
      }
      expect(await categories.list(fresh)).toHaveLength(1);
    });
  });

  describe('lists', () => {
    let user: TestUser;
    let api: Client;
    const names = ['mango', 'apple', 'kiwi', 'banana', 'cherry', 'lime', 'fig'];
    const made: Category[] = [];

    beforeAll(async () => {
      ({ user, api } = await newUser());
      // Concurrently, so that some may share a createdAt and the id must break the tie.
      made.push(...(await Promise.all(names.map((name) => createCategory(app, user, { name })))));
    });

    const orders: Record<string, (a: Category, b: Category) => number> = {
      name: (a, b) => compareValues(a.name, b.name) || compareValues(a.id, b.id),
      '-name': (a, b) => compareValues(b.name, a.name) || compareValues(b.id, a.id),
      createdAt: (a, b) => compareValues(a.createdAt, b.createdAt) || compareValues(a.id, b.id),
      '-createdAt': (a, b) => compareValues(b.createdAt, a.createdAt) || compareValues(b.id, a.id),
    };

    it.each(Object.keys(orders))(
      'sort=%s pages through every category once, in order',
      async (sort) => {
        const { items, pages } = await categories.listAll(user, `sort=${sort}&limit=2`);
        expect(pages.map((page) => page.length)).toEqual([2, 2, 2, 1]);
        expect(items.map((category) => category.id)).toEqual(
          [...made].sort(orders[sort]).map((category) => category.id),
        );
      },
    );

    it('is stable under inserts between pages', async () => {
      const { user: fresh } = await newUser();
      const initial = await Promise.all(
        ['b1', 'b2', 'b3', 'b4', 'b5', 'b6'].map((name) => createCategory(app, fresh, { name })),
      );
      let round = 0;
      const { items } = await categories.listAll(fresh, 'sort=name&limit=2', async () => {
        round += 1;
        await createCategory(app, fresh, { name: `a${round}` }); // before the cursor
        await createCategory(app, fresh, { name: `c${round}` }); // after it
      });
      const ids = items.map((category) => category.id);
      expect(new Set(ids).size).toBe(ids.length);
      for (const category of initial) expect(ids).toContain(category.id);
      expect(items.map((category) => category.name)).toEqual(
        [...items.map((category) => category.name)].sort(),
      );
      expect(items.some((category) => category.name.startsWith('a'))).toBe(false);
    });

    it('limit defaults to 20 and is at most 100', async () => {
      const { user: fresh, api: freshApi } = await newUser();
      await Promise.all(
        Array.from({ length: 21 }, (_, i) =>
          createCategory(app, fresh, { name: `c${String(i).padStart(2, '0')}` }),
        ),
      );
      const first = await freshApi.get('/v1/categories');
      expect(first.body.data).toHaveLength(20);
      expect(first.body.nextCursor).toEqual(expect.any(String));
      const all = await freshApi.get('/v1/categories?limit=100');
      expect(all.body.data).toHaveLength(21);
      expect(all.body.nextCursor).toBeNull();
    });

    it.each([
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=x', 'limit'],
      ['sort=title', 'sort'],
      ['sort=-color', 'sort'],
      ['q=work', 'q'],
      ['name=work', 'name'],
    ])('GET /v1/categories?%s is 400 VALIDATION_FAILED naming %s', async (query, field) => {
      expectValidationError(await api.get(`/v1/categories?${query}`), field);
    });

    it('a tampered cursor, or one from another sort, is 400 INVALID_CURSOR', async () => {
      const cursor: string = (await api.get('/v1/categories?sort=name&limit=2')).body.nextCursor;
      expect(cursor).toEqual(expect.any(String));
      const payload = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
      const forge = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
      for (const [sort, bad] of [
        ['-name', cursor],
        ['createdAt', cursor],
        ['name', 'garbage!!'],
        ['name', cursor.slice(0, -4)],
        ['name', forge({ ...payload, id: 'nope' })],
        ['name', forge({ ...payload, v: null })],
        ['name', forge({ ...payload, v: 'a\u0000' })],
        ['createdAt', forge({ ...payload, s: 'createdAt', v: 'not a time' })],
        ['createdAt', forge({ ...payload, s: 'createdAt', v: '2031-02-30T00:00:00.000Z' })],
      ]) {
        const reply = await api.get(
          `/v1/categories?sort=${sort}&limit=2&cursor=${encodeURIComponent(bad)}`,
        );
        expectProblem(reply, 400, 'INVALID_CURSOR');
      }
    });
  });

  describe('ETag and conditional requests', () => {
    sharedTests.conditionalRequests(categories, {
      staleWrites: [['PATCH', 'DELETE']],
      currentInAList: false,
      concurrentWriters: [2],
    });
  });

  describe('Idempotency-Key on POST /v1/categories', () => {
    sharedTests.idempotencyKeys(categories, { concurrentRequests: 6 });

    it('a request that failed (409) keeps no key: the retry creates once the name is free', async () => {
      const { user, api } = await newUser();
      const taken: Category = await createCategory(app, user, { name: 'Taken' });
      const key = randomUUID();
      const body = { name: 'Taken' };
      expectProblem(
        await api.post('/v1/categories', body, { 'idempotency-key': key }),
        409,
        'CATEGORY_NAME_TAKEN',
      );
      expect((await api.delete(`/v1/categories/${taken.id}`)).status).toBe(204);
      const retry = await api.post('/v1/categories', body, { 'idempotency-key': key });
      expect(retry.status).toBe(201);
      expect(retry.headers['idempotent-replayed']).toBeUndefined();
      expect(await categories.list(user)).toEqual([retry.body]);
    });
  });

  describe('deleting a category leaves its tasks without one', () => {
    it('its tasks get categoryId null and a new version (a new ETag); other tasks are untouched', async () => {
      const { user, api } = await newUser();
      const doomed: Category = await createCategory(app, user, { name: 'Doomed' });
      const kept: Category = await createCategory(app, user, { name: 'Kept' });
      const filed = await Promise.all(
        [1, 2, 3].map((n) => createTask(app, user, { title: `filed ${n}`, categoryId: doomed.id })),
      );
      const elsewhere = await createTask(app, user, { title: 'elsewhere', categoryId: kept.id });
      const loose = await createTask(app, user, { title: 'loose' });
      // Another user's task in a category of the same name is not touched either.
      const { user: other, api: otherApi } = await newUser();
      const theirCategory = await createCategory(app, other, { name: 'Doomed' });
      const theirs = await createTask(app, other, {
        title: 'theirs',
        categoryId: theirCategory.id,
      });

      const etags = await Promise.all(
        filed.map(async (task) => String((await api.get(`/v1/tasks/${task.id}`)).headers.etag)),
      );
      expect((await api.delete(`/v1/categories/${doomed.id}`)).status).toBe(204);

      for (const [i, task] of filed.entries()) {
        const now = await api.get(`/v1/tasks/${task.id}`);
        expect(now.status).toBe(200);
        expect(now.body).toMatchObject({
          id: task.id,
          title: task.title,
          categoryId: null,
          version: task.version + 1,
        });
        expect(now.headers.etag).not.toBe(etags[i]);
        const conditional = await api.get(`/v1/tasks/${task.id}`, { 'if-none-match': etags[i] });
        expect(conditional.status).toBe(200);
        // A write holding the old ETag is refused: the task changed.
        expectProblem(
          await api.patch(`/v1/tasks/${task.id}`, { title: 'x' }, { 'if-match': etags[i] }),
          412,
          'PRECONDITION_FAILED',
        );
      }
      expect((await api.get(`/v1/tasks/${elsewhere.id}`)).body).toEqual(elsewhere);
      expect((await api.get(`/v1/tasks/${loose.id}`)).body).toEqual(loose);
      expect((await otherApi.get(`/v1/tasks/${theirs.id}`)).body).toEqual(theirs);
      expect((await api.get(`/v1/tasks?categoryId=${doomed.id}`)).body.data).toEqual([]);
      expect((await api.get(`/v1/tasks?categoryId=${kept.id}`)).body.data).toEqual([elsewhere]);
      expect((await api.get('/v1/tasks?limit=100')).body.data).toHaveLength(5);
    });

    it('a refused DELETE (412) leaves the category and its tasks as they were', async () => {
      const { user, api } = await newUser();
      const category: Category = await createCategory(app, user);
      const task = await createTask(app, user, { categoryId: category.id });
      const stale = String((await api.get(`/v1/categories/${category.id}`)).headers.etag);
      const changed = await api.patch(`/v1/categories/${category.id}`, { color: '#010101' });
      expectProblem(
        await api.delete(`/v1/categories/${category.id}`, { 'if-match': stale }),
        412,
        'PRECONDITION_FAILED',
      );
      expect((await api.get(`/v1/categories/${category.id}`)).body).toEqual(changed.body);
      expect((await api.get(`/v1/tasks/${task.id}`)).body).toEqual(task);
    });
  });

  describe('Cache-Control: private and Location', () => {
    sharedTests.privateResponses(categories, {
      status: 409,
      send: (api, created) => api.post('/v1/categories', { name: created.name.toUpperCase() }),
    });
  });
});
