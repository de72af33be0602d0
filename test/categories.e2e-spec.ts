import {
  Call,
  Client,
  TestUser,
  call,
  clientFor,
  createCategory,
  createTask,
  expectProblem,
  expectValidationError,
  listAll,
  registerUser,
} from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomUUID } from 'node:crypto';
import { startApi } from './app';

/** End-to-end: the category routes of CONTRACT §2 and §4, through the real bootstrap and database. */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

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

  async function newUser(): Promise<{ user: TestUser; api: Client }> {
    const user = await registerUser(app);
    return { user, api: clientFor(app, user) };
  }

  async function categoriesOf(user: TestUser, query = ''): Promise<Category[]> {
    return (await listAll<Category>(app, user, `/v1/categories?limit=100${query}`)).items;
  }

  describe('create, read, update, delete', () => {
    it('POST creates a category: 201, Location, ETag, Cache-Control: private', async () => {
      const { user, api } = await newUser();
      const created = await api.post('/v1/categories', { name: '  Work  ', color: '#3b82f6' });
      expect(created.status).toBe(201);
      expect(created.body).toEqual({
        id: expect.stringMatching(UUID),
        name: 'Work',
        color: '#3b82f6',
        version: 1,
        createdAt: expect.stringMatching(ISO_UTC),
        updatedAt: expect.stringMatching(ISO_UTC),
      });
      expect(created.headers['content-type']).toMatch(/^application\/json/);
      expect(created.headers.location).toBe(`/v1/categories/${created.body.id}`);
      expect(created.headers.etag).toMatch(/^"[^"]+"$/);
      expect(created.headers['cache-control']).toBe('private');

      const fetched = await api.get(String(created.headers.location));
      expect(fetched.status).toBe(200);
      expect(fetched.body).toEqual(created.body);
      expect(fetched.headers.etag).toBe(created.headers.etag);
      expect(fetched.headers['cache-control']).toBe('private');
      expect(await categoriesOf(user)).toEqual([created.body]);
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

    it('DELETE is 204 with no body; then GET, PATCH and DELETE are 404 and the list is empty', async () => {
      const { api, user } = await newUser();
      const category: Category = await createCategory(app, user);
      const kept: Category = await createCategory(app, user);
      const deleted = await api.delete(`/v1/categories/${category.id}`);
      expect(deleted.status).toBe(204);
      expect(deleted.raw).toBe('');
      expect(deleted.headers['cache-control']).toBe('private');

      expectProblem(await api.get(`/v1/categories/${category.id}`), 404, 'NOT_FOUND');
      expectProblem(
        await api.patch(`/v1/categories/${category.id}`, { name: 'x' }),
        404,
        'NOT_FOUND',
      );
      expectProblem(await api.delete(`/v1/categories/${category.id}`), 404, 'NOT_FOUND');
      expect(idsOf(await categoriesOf(user))).toEqual([kept.id]);
    });
  });

  describe('authentication', () => {
    let user: TestUser;
    let category: Category;
    beforeAll(async () => {
      user = await registerUser(app);
      category = await createCategory(app, user, { name: 'untouched' });
    });

    const routes: [Call['method'], string][] = [
      ['GET', '/v1/categories'],
      ['POST', '/v1/categories'],
      ['GET', '/v1/categories/:id'],
      ['PATCH', '/v1/categories/:id'],
      ['DELETE', '/v1/categories/:id'],
    ];
    const badTokens: [string, (user: TestUser) => string | undefined][] = [
      ['no token', () => undefined],
      ['a malformed token', () => 'not-a-jwt'],
      [
        'a token with a forged signature',
        ({ accessToken }) => {
          const [header, payload, signature] = accessToken.split('.');
          return `${header}.${payload}.${'A'.repeat(signature.length)}`;
        },
      ],
    ];

    describe.each(badTokens)('with %s', (_name, badToken) => {
      it.each(routes)('%s %s is 401 UNAUTHENTICATED and changes nothing', async (method, path) => {
        const reply = await call(app, {
          method,
          url: path.replace(':id', category.id),
          token: badToken(user),
          body: method === 'POST' || method === 'PATCH' ? { name: 'intruder' } : undefined,
        });
        expectProblem(reply, 401, 'UNAUTHENTICATED');
        expect(reply.headers['www-authenticate']).toMatch(/^Bearer\b/);
        const api = clientFor(app, user);
        expect((await api.get(`/v1/categories/${category.id}`)).body).toEqual(category);
        expect(await categoriesOf(user)).toEqual([category]);
      });
    });
  });

  describe('another user’s categories are 404, never 403, and stay as they were', () => {
    let owner: TestUser;
    let ownerApi: Client;
    let intruderUser: TestUser;
    let intruder: Client;
    let category: Category;
    let etag: string;

    beforeAll(async () => {
      owner = await registerUser(app);
      ownerApi = clientFor(app, owner);
      intruderUser = await registerUser(app);
      intruder = clientFor(app, intruderUser);
      category = await createCategory(app, owner, { name: 'Secret', color: '#000000' });
      etag = String((await ownerApi.get(`/v1/categories/${category.id}`)).headers.etag);
    });

    afterEach(async () => {
      const now = await ownerApi.get(`/v1/categories/${category.id}`);
      expect(now.status).toBe(200);
      expect(now.body).toEqual(category);
    });

    it('GET is 404 NOT_FOUND, the same problem as for an id that does not exist', async () => {
      const theirs = await intruder.get(`/v1/categories/${category.id}`);
      const missing = await intruder.get(`/v1/categories/${randomUUID()}`);
      expectProblem(theirs, 404, 'NOT_FOUND');
      expectProblem(missing, 404, 'NOT_FOUND');
      expect(theirs.body.detail).toBe(missing.body.detail);
      expect(theirs.headers.etag).toBeUndefined();
    });

    it.each([
      ['no If-Match', () => ({})],
      ['If-Match: *', () => ({ 'if-match': '*' })],
      ['the current If-Match', () => ({ 'if-match': etag })],
    ])('PATCH with %s is 404 and changes nothing', async (_name, headers) => {
      expectProblem(
        await intruder.patch(`/v1/categories/${category.id}`, { name: 'Mine now' }, headers()),
        404,
        'NOT_FOUND',
      );
    });

    it.each([
      ['no If-Match', () => ({})],
      ['If-Match: *', () => ({ 'if-match': '*' })],
      ['the current If-Match', () => ({ 'if-match': etag })],
    ])('DELETE with %s is 404 and the category still exists', async (_name, headers) => {
      expectProblem(
        await intruder.delete(`/v1/categories/${category.id}`, headers()),
        404,
        'NOT_FOUND',
      );
    });

    it('another user’s category never appears in a list, whatever the sort', async () => {
      const own = await createCategory(app, intruderUser, { name: 'Secret' });
      for (const sort of ['name', '-name', 'createdAt', '-createdAt']) {
        expect(idsOf(await categoriesOf(intruderUser, `&sort=${sort}`))).toEqual([own.id]);
      }
    });

    it('a task cannot be filed under another user’s category', async () => {
      const before = await intruder.get('/v1/tasks');
      const reply = await intruder.post('/v1/tasks', { title: 'x', categoryId: category.id });
      expectValidationError(reply, 'categoryId');
      expect((await intruder.get('/v1/tasks')).body).toEqual(before.body);
    });

    it.each(['nope', '123', `${randomUUID()}0`])(
      'a malformed id (%s) is 404 NOT_FOUND for GET, PATCH and DELETE',
      async (id) => {
        expectProblem(await ownerApi.get(`/v1/categories/${id}`), 404, 'NOT_FOUND');
        expectProblem(
          await ownerApi.patch(`/v1/categories/${id}`, { name: 'x' }),
          404,
          'NOT_FOUND',
        );
        expectProblem(await ownerApi.delete(`/v1/categories/${id}`), 404, 'NOT_FOUND');
      },
    );
  });

  describe('validation', () => {
    let user: TestUser;
    let api: Client;
    let target: Category;

    beforeAll(async () => {
      ({ user, api } = await newUser());
      target = await createCategory(app, user, { name: 'Target', color: '#123456' });
    });

    const invalidFields: [string, Record<string, unknown>, string][] = [
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

    it('POST without a name is 400 naming name, and creates nothing', async () => {
      expectValidationError(await api.post('/v1/categories', { color: '#ffffff' }), 'name');
      expect(await categoriesOf(user)).toEqual([target]);
    });

    it.each(invalidFields)(
      'POST with %s is 400 VALIDATION_FAILED and creates nothing',
      async (_name, body, field) => {
        const reply = await api.post('/v1/categories', { name: 'Valid', ...body });
        expect(expectValidationError(reply, field).detail).toContain(field);
        expect(await categoriesOf(user)).toEqual([target]);
      },
    );

    it.each(invalidFields)(
      'PATCH with %s is 400 VALIDATION_FAILED and changes nothing',
      async (_name, body, field) => {
        expectValidationError(await api.patch(`/v1/categories/${target.id}`, body), field);
        expect((await api.get(`/v1/categories/${target.id}`)).body).toEqual(target);
      },
    );

    it('an empty PATCH is 400 VALIDATION_FAILED and changes nothing', async () => {
      expectProblem(await api.patch(`/v1/categories/${target.id}`, {}), 400, 'VALIDATION_FAILED');
      expect((await api.get(`/v1/categories/${target.id}`)).body).toEqual(target);
    });

    it('an unknown field fails the whole request, even next to valid ones', async () => {
      const reply = await api.patch(`/v1/categories/${target.id}`, { name: 'New', extra: 1 });
      expectValidationError(reply, 'extra');
      expect((await api.get(`/v1/categories/${target.id}`)).body).toEqual(target);
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
    let user: TestUser;
    let api: Client;
    let target: Category;

    beforeAll(async () => {
      ({ user, api } = await newUser());
      target = await createCategory(app, user, { name: 'Target' });
    });

    afterEach(async () => {
      expect((await api.get(`/v1/categories/${target.id}`)).body).toEqual(target);
      expect(await categoriesOf(user)).toEqual([target]);
    });

    it.each([
      ['truncated JSON', '{"name":'],
      ['trailing garbage', '{"name":"x"} x'],
      ['an empty body', ''],
    ])('%s is 400 MALFORMED_JSON (POST and PATCH)', async (_name, raw) => {
      const headers = { 'content-type': 'application/json' };
      expectProblem(await api.post('/v1/categories', raw, headers), 400, 'MALFORMED_JSON');
      expectProblem(
        await api.patch(`/v1/categories/${target.id}`, raw, headers),
        400,
        'MALFORMED_JSON',
      );
    });

    it('a body over 1 MiB is 413 PAYLOAD_TOO_LARGE (POST and PATCH)', async () => {
      const huge = JSON.stringify({ name: 'n'.repeat(1024 * 1024) });
      expectProblem(await api.post('/v1/categories', huge), 413, 'PAYLOAD_TOO_LARGE');
      expectProblem(await api.patch(`/v1/categories/${target.id}`, huge), 413, 'PAYLOAD_TOO_LARGE');
    });

    it('text/plain is 415 UNSUPPORTED_MEDIA_TYPE (POST and PATCH)', async () => {
      const headers = { 'content-type': 'text/plain' };
      expectProblem(
        await api.post('/v1/categories', 'name=x', headers),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      );
      expectProblem(
        await api.patch(`/v1/categories/${target.id}`, 'name=x', headers),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      );
    });

    it('a JSON array is 400 VALIDATION_FAILED (POST and PATCH)', async () => {
      const raw = JSON.stringify([{ name: 'x' }]);
      expectProblem(await api.post('/v1/categories', raw), 400, 'VALIDATION_FAILED');
      expectProblem(await api.patch(`/v1/categories/${target.id}`, raw), 400, 'VALIDATION_FAILED');
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
        expect(idsOf(await categoriesOf(user))).toEqual(idsOf([work, home]));
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
      const other = await registerUser(app);
      const theirs = await clientFor(app, other).post('/v1/categories', { name: 'work' });
      expect(theirs.status).toBe(201);
      expect(theirs.body.name).toBe('work');
      expect(idsOf(await categoriesOf(other))).toEqual([theirs.body.id]);
      expect(idsOf(await categoriesOf(user))).toEqual(idsOf([work, home]));
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
      expect(await categoriesOf(fresh)).toHaveLength(1);
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
        const { items, pages } = await listAll<Category>(
          app,
          user,
          `/v1/categories?sort=${sort}&limit=2`,
        );
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
      const { items } = await listAll<Category>(
        app,
        fresh,
        '/v1/categories?sort=name&limit=2',
        async () => {
          round += 1;
          await createCategory(app, fresh, { name: `a${round}` }); // before the cursor
          await createCategory(app, fresh, { name: `c${round}` }); // after it
        },
      );
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
    let user: TestUser;
    let api: Client;
    beforeAll(async () => {
      ({ user, api } = await newUser());
    });

    const etagOf = async (id: string): Promise<string> =>
      String((await api.get(`/v1/categories/${id}`)).headers.etag);

    it('GET one returns a strong ETag; If-None-Match with it is 304 with an empty body', async () => {
      const category: Category = await createCategory(app, user);
      const etag = await etagOf(category.id);
      expect(etag).toMatch(/^"[^"]+"$/);
      const notModified = await api.get(`/v1/categories/${category.id}`, {
        'if-none-match': etag,
      });
      expect(notModified.status).toBe(304);
      expect(notModified.raw).toBe('');
      expect(notModified.headers.etag).toBe(etag);
      expect(notModified.headers['cache-control']).toBe('private');
      const other = await api.get(`/v1/categories/${category.id}`, { 'if-none-match': '"x"' });
      expect(other.status).toBe(200);
      expect(other.body).toEqual(category);
    });

    it('after a PATCH the ETag changes, and the old one no longer gives 304', async () => {
      const category: Category = await createCategory(app, user);
      const old = await etagOf(category.id);
      const patched = await api.patch(`/v1/categories/${category.id}`, { color: '#111111' });
      expect(patched.status).toBe(200);
      expect(patched.headers.etag).not.toBe(old);
      expect(await etagOf(category.id)).toBe(patched.headers.etag);
      const stale = await api.get(`/v1/categories/${category.id}`, { 'if-none-match': old });
      expect(stale.status).toBe(200);
      expect(stale.body).toEqual(patched.body);
    });

    it('PATCH and DELETE with a stale If-Match are 412 PRECONDITION_FAILED and change nothing', async () => {
      const category: Category = await createCategory(app, user);
      const stale = await etagOf(category.id);
      const second = await api.patch(`/v1/categories/${category.id}`, { color: '#222222' });
      expectProblem(
        await api.patch(`/v1/categories/${category.id}`, { name: 'x' }, { 'if-match': stale }),
        412,
        'PRECONDITION_FAILED',
      );
      expectProblem(
        await api.delete(`/v1/categories/${category.id}`, { 'if-match': stale }),
        412,
        'PRECONDITION_FAILED',
      );
      expect((await api.get(`/v1/categories/${category.id}`)).body).toEqual(second.body);
    });

    it('PATCH and DELETE with the current If-Match succeed', async () => {
      const category: Category = await createCategory(app, user);
      const patched = await api.patch(
        `/v1/categories/${category.id}`,
        { color: '#333333' },
        { 'if-match': await etagOf(category.id) },
      );
      expect(patched.status).toBe(200);
      expect(patched.body.version).toBe(category.version + 1);
      const deleted = await api.delete(`/v1/categories/${category.id}`, {
        'if-match': String(patched.headers.etag),
      });
      expect(deleted.status).toBe(204);
      expect((await api.get(`/v1/categories/${category.id}`)).status).toBe(404);
    });

    it('If-Match: * matches whatever the current version is', async () => {
      const category: Category = await createCategory(app, user);
      await api.patch(`/v1/categories/${category.id}`, { color: '#444444' });
      const patched = await api.patch(
        `/v1/categories/${category.id}`,
        { color: '#555555' },
        { 'if-match': '*' },
      );
      expect(patched.status).toBe(200);
      expect(patched.body.version).toBe(3);
      expect((await api.delete(`/v1/categories/${category.id}`, { 'if-match': '*' })).status).toBe(
        204,
      );
    });

    it('two concurrent PATCHes with the same If-Match: one 200, one 412, version +1', async () => {
      const category: Category = await createCategory(app, user);
      const etag = await etagOf(category.id);
      const replies = await Promise.all(
        ['#aaaaaa', '#bbbbbb'].map((color) =>
          api.patch(`/v1/categories/${category.id}`, { color }, { 'if-match': etag }),
        ),
      );
      expect(replies.map((reply) => reply.status).sort()).toEqual([200, 412]);
      const winner = replies.find((reply) => reply.status === 200)!;
      expectProblem(
        replies.find((reply) => reply.status === 412)!,
        412,
        'PRECONDITION_FAILED',
      );
      const final = await api.get(`/v1/categories/${category.id}`);
      expect(final.body.version).toBe(category.version + 1);
      expect(final.body).toEqual(winner.body);
    });
  });

  describe('Idempotency-Key on POST /v1/categories', () => {
    it('a retry with the same key and body replays the first response and creates nothing', async () => {
      const { user, api } = await newUser();
      const key = randomUUID();
      const body = { name: 'Groceries', color: '#00aa00' };
      const first = await api.post('/v1/categories', body, { 'idempotency-key': key });
      expect(first.status).toBe(201);
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      const retry = await api.post('/v1/categories', body, { 'idempotency-key': key });
      expect(retry.status).toBe(201);
      expect(retry.body).toEqual(first.body);
      expect(retry.headers.location).toBe(first.headers.location);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(await categoriesOf(user)).toEqual([first.body]);
    });

    it('the same key with another body is 422 IDEMPOTENCY_KEY_REUSED and creates nothing', async () => {
      const { user, api } = await newUser();
      const key = randomUUID();
      const first = await api.post('/v1/categories', { name: 'One' }, { 'idempotency-key': key });
      expect(first.status).toBe(201);
      const reused = await api.post('/v1/categories', { name: 'Two' }, { 'idempotency-key': key });
      expectProblem(reused, 422, 'IDEMPOTENCY_KEY_REUSED');
      expect(await categoriesOf(user)).toEqual([first.body]);
    });

    it('6 concurrent requests with one key create exactly one category (and no 409)', async () => {
      const { user, api } = await newUser();
      const key = randomUUID();
      const replies = await Promise.all(
        Array.from({ length: 6 }, () =>
          api.post('/v1/categories', { name: 'Once' }, { 'idempotency-key': key }),
        ),
      );
      expect(replies.map((reply) => reply.status)).toEqual(replies.map(() => 201));
      expect(new Set(replies.map((reply) => (reply.body as Category).id)).size).toBe(1);
      expect(
        replies.filter((reply) => reply.headers['idempotent-replayed'] === undefined),
      ).toHaveLength(1);
      expect(await categoriesOf(user)).toHaveLength(1);
    });

    it('keys are per user: another user may use the same key', async () => {
      const a = await newUser();
      const b = await newUser();
      const key = `shared-${randomUUID()}`;
      const fromA = await a.api.post(
        '/v1/categories',
        { name: 'Same' },
        { 'idempotency-key': key },
      );
      const fromB = await b.api.post(
        '/v1/categories',
        { name: 'Same' },
        { 'idempotency-key': key },
      );
      expect([fromA.status, fromB.status]).toEqual([201, 201]);
      expect(fromB.body.id).not.toBe(fromA.body.id);
      expect(fromB.headers['idempotent-replayed']).toBeUndefined();
      expect(await categoriesOf(b.user)).toEqual([fromB.body]);
    });

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
      expect(await categoriesOf(user)).toEqual([retry.body]);
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
      const other = await registerUser(app);
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
      expect((await clientFor(app, other).get(`/v1/tasks/${theirs.id}`)).body).toEqual(theirs);
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
    it('every authenticated response is private; a 201 names the new category', async () => {
      const { api } = await newUser();
      const created = await api.post('/v1/categories', { name: 'cached?' });
      expect(created.headers.location).toBe(`/v1/categories/${created.body.id}`);
      const url = String(created.headers.location);
      const etag = String(created.headers.etag);
      const replies = [
        created,
        await api.get('/v1/categories'),
        await api.get(url),
        await api.get(url, { 'if-none-match': etag }),
        await api.patch(url, { color: '#abcdef' }),
        await api.post('/v1/categories', { name: 'CACHED?' }),
        await api.get(`/v1/categories/${randomUUID()}`),
        await api.delete(url, { 'if-match': etag }),
        await api.delete(url),
      ];
      expect(replies.map((reply) => reply.status)).toEqual([
        201, 200, 200, 304, 200, 409, 404, 412, 204,
      ]);
      for (const reply of replies) expect(reply.headers['cache-control']).toBe('private');
    });
  });
});
