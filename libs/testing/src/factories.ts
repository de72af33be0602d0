import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomUUID } from 'node:crypto';
import { call } from './http';

export interface TestUser {
  id: string;
  email: string;
  password: string;
  accessToken: string;
  refreshToken: string;
}

/** A new user, registered through the API. */
export async function registerUser(
  app: NestFastifyApplication,
  overrides: { email?: string; password?: string; name?: string } = {},
): Promise<TestUser> {
  const email = overrides.email ?? `user-${randomUUID()}@example.test`;
  const password = overrides.password ?? `pw-${randomUUID()}`;
  const reply = await call(app, {
    method: 'POST',
    url: '/v1/auth/register',
    body: { email, password, name: overrides.name ?? 'Test User' },
  });
  if (reply.status !== 201) throw new Error(`register failed: ${reply.status} ${reply.raw}`);
  return {
    id: reply.body.user.id,
    email,
    password,
    accessToken: reply.body.accessToken,
    refreshToken: reply.body.refreshToken,
  };
}

/** A request body: what POST and PATCH send. */
export type Body = Record<string, unknown>;

/** One resource of `user` created through the API at `path`: `defaults` overridden by `body`. */
async function createThrough(
  app: NestFastifyApplication,
  user: TestUser,
  path: string,
  defaults: Body,
  body: Body,
): Promise<any> {
  const reply = await call(app, {
    method: 'POST',
    url: path,
    token: user.accessToken,
    body: { ...defaults, ...body },
  });
  if (reply.status !== 201) throw new Error(`POST ${path} failed: ${reply.status} ${reply.raw}`);
  return reply.body;
}

/** Creates a resource of `user` through the API; `body` overrides the defaults. */
export type Create = (app: NestFastifyApplication, user: TestUser, body?: Body) => Promise<any>;

/** A task owned by `user`, created through the API. */
export const createTask: Create = (app, user, body = {}) =>
  createThrough(app, user, '/v1/tasks', { title: `task ${randomUUID()}` }, body);

/** A category owned by `user`, created through the API. */
export const createCategory: Create = (app, user, body = {}) =>
  createThrough(app, user, '/v1/categories', { name: `category ${randomUUID()}` }, body);

/** An API key as created: `key` is the plaintext, shown this once. */
export interface TestApiKey {
  id: string;
  key: string;
  prefix: string;
  scopes: string[];
}

/** An API key of `user`, created through the API; `key` is the plaintext, shown this once. */
export async function createApiKey(
  app: NestFastifyApplication,
  user: TestUser,
  body: Body = {},
): Promise<TestApiKey> {
  const reply = await call<TestApiKey>(app, {
    method: 'POST',
    url: '/v1/api-keys',
    token: user.accessToken,
    body: { name: `key ${randomUUID()}`, scopes: ['tasks:read'], ...body },
  });
  if (reply.status !== 201)
    throw new Error(`POST /v1/api-keys failed: ${reply.status} ${reply.raw}`);
  return reply.body;
}
