import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { type TestUser, registerUser } from './factories';
import { Reply, call } from './http';

/** Requests on behalf of one user (or of nobody), so tests read like the HTTP they send. */
export interface Client {
  get<T = any>(url: string, headers?: Record<string, string>): Promise<Reply<T>>;
  post<T = any>(url: string, body: unknown, headers?: Record<string, string>): Promise<Reply<T>>;
  patch<T = any>(url: string, body: unknown, headers?: Record<string, string>): Promise<Reply<T>>;
  delete<T = any>(url: string, headers?: Record<string, string>): Promise<Reply<T>>;
}

export function clientFor(app: NestFastifyApplication, user?: TestUser): Client {
  const token = user?.accessToken;
  return {
    get: (url, headers) => call(app, { method: 'GET', url, token, headers }),
    post: (url, body, headers) => call(app, { method: 'POST', url, token, body, headers }),
    patch: (url, body, headers) => call(app, { method: 'PATCH', url, token, body, headers }),
    delete: (url, headers) => call(app, { method: 'DELETE', url, token, headers }),
  };
}

/** A new user, registered through the API, and a client that acts as them. */
export async function registerClient(
  app: NestFastifyApplication,
): Promise<{ user: TestUser; api: Client }> {
  const user = await registerUser(app);
  return { user, api: clientFor(app, user) };
}

export interface Listing<T> {
  /** Every item of every page, in order. */
  items: T[];
  /** The pages as returned. */
  pages: T[][];
}

/**
 * Follows nextCursor from the first page of `path` (which may carry a query) to the last.
 * `between` runs after each page but the last, e.g. to write while paging.
 */
export async function listAll<T = any>(
  app: NestFastifyApplication,
  user: TestUser,
  path: string,
  between?: (pageNumber: number) => Promise<void>,
): Promise<Listing<T>> {
  const pages: T[][] = [];
  let cursor: string | null = null;
  const separator = path.includes('?') ? '&' : '?';
  do {
    const url: string =
      cursor === null ? path : `${path}${separator}cursor=${encodeURIComponent(cursor)}`;
    const reply = await call<{ data: T[]; nextCursor: string | null }>(app, {
      method: 'GET',
      url,
      token: user.accessToken,
    });
    if (reply.status !== 200) throw new Error(`GET ${url} failed: ${reply.status} ${reply.raw}`);
    pages.push(reply.body.data);
    cursor = reply.body.nextCursor;
    if (pages.length > 10_000) throw new Error(`GET ${path}: the cursor never ends`);
    if (cursor !== null && between) await between(pages.length);
  } while (cursor !== null);
  return { items: pages.flat(), pages };
}
