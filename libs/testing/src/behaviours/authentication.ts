import { type TestUser, registerUser } from '../factories';
import { type Call, call } from '../http';
import { expectProblem } from '../problems';
import { type Resource, type Stored } from './resource';

/** Tokens that must not authenticate: none, garbage, and a real one with another signature. */
export const BAD_TOKENS: [string, (user: TestUser) => string | undefined][] = [
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

/**
 * Registers, in the current describe block: every route of `resource` (list, create, read, update,
 * delete) with each of BAD_TOKENS is 401 UNAUTHENTICATED with a Bearer challenge, and leaves the
 * user's one item, and their list, as they were.
 */
export function testAuthentication<T extends Stored>(resource: Resource<T>): void {
  let user: TestUser;
  let item: T;
  beforeAll(async () => {
    user = await registerUser(resource.app());
    item = await resource.create(user);
  });

  const routes: [Call['method'], string][] = [
    ['GET', resource.path],
    ['POST', resource.path],
    ['GET', resource.url(':id')],
    ['PATCH', resource.url(':id')],
    ['DELETE', resource.url(':id')],
  ];
  const bodies: Partial<Record<Call['method'], () => unknown>> = {
    POST: resource.body,
    PATCH: resource.change,
  };

  describe.each(BAD_TOKENS)('with %s', (_name, badToken) => {
    it.each(routes)('%s %s is 401 UNAUTHENTICATED and changes nothing', async (method, path) => {
      const reply = await call(resource.app(), {
        method,
        url: path.replace(':id', item.id),
        token: badToken(user),
        body: bodies[method]?.(),
      });
      expectProblem(reply, 401, 'UNAUTHENTICATED');
      expect(reply.headers['www-authenticate']).toMatch(/^Bearer\b/);
      await resource.expectStored(user, item);
      await resource.expectOnly(user, [item]);
    });
  });
}
