import { call, registerUser } from '@app/testing';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { startApi } from './app';

describe('smoke', () => {
  let app: NestFastifyApplication;
  beforeAll(async () => {
    app = await startApi();
  });
  afterAll(() => app.close());

  it('registers and reads /users/me', async () => {
    const user = await registerUser(app);
    const me = await call(app, { method: 'GET', url: '/v1/users/me', token: user.accessToken });
    expect(me.status).toBe(200);
    expect(me.body.email).toBe(user.email);
  });
});
