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

/** A task owned by `user`, created through the API. */
export async function createTask(
  app: NestFastifyApplication,
  user: TestUser,
  body: Record<string, unknown> = {},
): Promise<any> {
  const reply = await call(app, {
    method: 'POST',
    url: '/v1/tasks',
    token: user.accessToken,
    body: { title: `task ${randomUUID()}`, ...body },
  });
  if (reply.status !== 201) throw new Error(`create task failed: ${reply.status} ${reply.raw}`);
  return reply.body;
}
