import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Body, Create, TestUser } from '../factories';
import type { Reply } from '../http';
import { STRONG_ETAG } from '../patterns';
import { type Client, type Listing, clientFor, listAll } from '../resources';

/** What every stored resource has. */
export interface Stored {
  id: string;
  version: number;
}

/** What the shared tests need to know about one kind of resource; see `defineResource`. */
export interface ResourceDefinition {
  /** The singular noun, for test names: 'task'. */
  noun: string;
  /** The collection, e.g. '/v1/tasks'; one item is `${path}/${id}`. */
  path: string;
  /** The app under test (a function: the app starts in a beforeAll). */
  app: () => NestFastifyApplication;
  /** The factory, e.g. createTask. */
  create: Create;
  /** A valid POST body; `n` is new at each call, so that unique fields can stay unique. */
  body: (n: number) => Body;
  /**
   * A valid PATCH body that changes a field to a value made of `n` (new at each call). It must
   * also be valid next to any body POST accepts.
   */
  change: (n: number) => Body;
}

/** A resource under test: what its spec defined, and the ways to create, read and list it. */
export interface Resource<T extends Stored> {
  noun: string;
  path: string;
  app: () => NestFastifyApplication;
  /** A valid POST body, a new one at each call. */
  body(): Body;
  /** A valid PATCH body that changes something, a new one at each call. */
  change(): Body;
  /** One item's URL. */
  url(id: string): string;
  /** A new item of `user`, through the API; `body` overrides the factory's defaults. */
  create(user: TestUser, body?: Body): Promise<T>;
  /** GET of one item, as `user`. */
  read(user: TestUser, id: string): Promise<Reply<T>>;
  /** Every item of `user` (all pages, in the default order); `query` is e.g. '&sort=name'. */
  list(user: TestUser, query?: string): Promise<T[]>;
  /**
   * Every page of `user`'s items for `query` (e.g. 'sort=name&limit=2'), following nextCursor;
   * `between` runs after each page but the last (see listAll).
   */
  listAll(
    user: TestUser,
    query: string,
    between?: (pageNumber: number) => Promise<void>,
  ): Promise<Listing<T>>;
  /** Asserts that `item` reads back exactly as it is, as its owner. */
  expectStored(owner: TestUser, item: T): Promise<void>;
  /** Asserts that `user` has exactly `items`, in the default order. */
  expectOnly(user: TestUser, items: T[]): Promise<void>;
  /**
   * Asserts that `created` is a 201 for a new item: JSON, with a Location that names it, a strong
   * ETag and Cache-Control: private; and that GET of the Location (as `api`) returns the same item
   * and ETag, privately. Returns the item.
   */
  expectCreated(api: Client, created: Reply<T>): Promise<T>;
}

export function defineResource<T extends Stored>(definition: ResourceDefinition): Resource<T> {
  const { noun, path, app } = definition;
  let made = 0;
  const url = (id: string): string => `${path}/${id}`;
  const resource: Resource<T> = {
    noun,
    path,
    app,
    body: () => definition.body((made += 1)),
    change: () => definition.change((made += 1)),
    url,
    create: (user, body) => definition.create(app(), user, body) as Promise<T>,
    read: (user, id) => clientFor(app(), user).get<T>(url(id)),
    list: async (user, query = '') => (await resource.listAll(user, `limit=100${query}`)).items,
    listAll: (user, query, between) => listAll<T>(app(), user, `${path}?${query}`, between),

    async expectStored(owner, item) {
      const now = await resource.read(owner, item.id);
      expect(now.status).toBe(200);
      expect(now.body).toEqual(item);
    },

    async expectOnly(user, items) {
      expect(await resource.list(user)).toEqual(items);
    },

    async expectCreated(api, created) {
      expect(created.status).toBe(201);
      expect(created.headers['content-type']).toMatch(/^application\/json/);
      expect(created.headers.location).toBe(url(created.body.id));
      expect(created.headers.etag).toMatch(STRONG_ETAG);
      expect(created.headers['cache-control']).toBe('private');

      const fetched = await api.get<T>(String(created.headers.location));
      expect(fetched.status).toBe(200);
      expect(fetched.body).toEqual(created.body);
      expect(fetched.headers.etag).toBe(created.headers.etag);
      expect(fetched.headers['cache-control']).toBe('private');
      return created.body;
    },
  };
  return resource;
}

/**
 * An object filled in by a beforeAll: the shared tests return their fixtures this way, so that a
 * spec's own tests in the same describe block can use them.
 */
export function filledLater<F extends object>(): F {
  return {} as F;
}
