import { createTask, expectProblem, registerUser, type TestUser } from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { startApi } from './app';

/**
 * A known path with a method it does not serve is 405 with `Allow` (RFC 9110 §15.5.6), an
 * OPTIONS is answered with the same `Allow`, and an unknown path stays 404 (issue 15, defect 5).
 */
describe('methods a path does not serve', () => {
  let app: NestFastifyApplication;
  let user: TestUser;
  let taskId: string;

  beforeAll(async () => {
    app = await startApi({ RATE_LIMIT_ENABLED: 'false' });
    user = await registerUser(app);
    taskId = (await createTask(app, user)).id;
  });
  afterAll(() => app.close());

  const send = (method: string, url: string, token?: string) =>
    app.inject({
      method: method as 'GET',
      url,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
  const problemOf = (reply: Awaited<ReturnType<typeof send>>) => ({
    status: reply.statusCode,
    headers: reply.headers,
    body: JSON.parse(reply.body),
    raw: reply.body,
  });

  it.each([
    ['DELETE', '/v1/tasks', 'GET, HEAD, POST, OPTIONS'],
    ['PUT', '/v1/tasks/:id', 'GET, HEAD, PATCH, DELETE, OPTIONS'],
    ['POST', '/v1/tasks/:id', 'GET, HEAD, PATCH, DELETE, OPTIONS'],
    ['GET', '/v1/auth/login', 'POST, OPTIONS'],
    ['PATCH', '/v1/admin/flags', 'GET, HEAD, PUT, OPTIONS'],
    ['POST', '/health/ready', 'GET, HEAD, OPTIONS'],
    ['DELETE', '/metrics', 'GET, HEAD, OPTIONS'],
  ])('%s %s is a 405 problem with Allow: %s', async (method, path, allow) => {
    const url = path.replace(':id', taskId);
    const reply = problemOf(await send(method, url, user.accessToken));
    const problem = expectProblem(reply, 405, 'METHOD_NOT_ALLOWED');
    expect(reply.headers.allow).toBe(allow);
    expect(problem.detail).toContain(method);
    expect(reply.headers['x-request-id']).toBe(problem.requestId);
  });

  it('is a 405 before authentication: the method is wrong whoever asks', async () => {
    const reply = problemOf(await send('PUT', `/v1/tasks/${taskId}`));
    expectProblem(reply, 405, 'METHOD_NOT_ALLOWED');
  });

  it('a path with a parameter that no route takes (too long) is a 404, not a 405', async () => {
    const reply = problemOf(await send('PUT', `/v1/tasks/${'a'.repeat(700)}`, user.accessToken));
    expectProblem(reply, 404, 'NOT_FOUND');
  });

  it.each([
    ['/v1/tasks', 'GET, HEAD, POST, OPTIONS'],
    ['/v1/tasks/00000000-0000-4000-8000-000000000000', 'GET, HEAD, PATCH, DELETE, OPTIONS'],
    ['/health/live', 'GET, HEAD, OPTIONS'],
  ])('OPTIONS %s is a 204 with Allow: %s', async (url, allow) => {
    const reply = await send('OPTIONS', url);
    expect(reply.statusCode).toBe(204);
    expect(reply.headers.allow).toBe(allow);
    expect(reply.body).toBe('');
  });

  it.each([
    ['GET', '/v1/nowhere'],
    ['OPTIONS', '/v1/nowhere'],
    ['DELETE', '/v1/tasks/x/y'],
  ])('%s %s, a path nothing serves, is still a 404', async (method, url) => {
    const reply = problemOf(await send(method, url, user.accessToken));
    expectProblem(reply, 404, 'NOT_FOUND');
    expect(reply.headers.allow).toBeUndefined();
  });
});
