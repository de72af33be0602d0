import { randomUUID } from 'node:crypto';
import { registerClient } from '../resources';
import { expectProblem } from '../problems';
import { type Resource, type Stored } from './resource';

export interface IdempotencyOptions {
  /** How many requests race with one key. */
  concurrentRequests: number;
}

/**
 * Registers, in the current describe block, Idempotency-Key on POST of `resource` (CONTRACT §4):
 * a retry replays the first response, another body with the same key is 422
 * IDEMPOTENCY_KEY_REUSED, concurrent requests with one key create exactly one item, and keys are
 * per user. Each test has users of its own.
 */
export function testIdempotencyKeys<T extends Stored>(
  resource: Resource<T>,
  options: IdempotencyOptions,
): void {
  const newUser = () => registerClient(resource.app());
  const withKey = (key: string) => ({ 'idempotency-key': key });

  it('a retry with the same key and body replays the first response and creates nothing', async () => {
    const { user, api } = await newUser();
    const key = randomUUID();
    const body = { ...resource.body(), ...resource.change() };
    const first = await api.post(resource.path, body, withKey(key));
    expect(first.status).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();

    const retry = await api.post(resource.path, body, withKey(key));
    expect(retry.status).toBe(201);
    expect(retry.body).toEqual(first.body);
    expect(retry.headers.location).toBe(first.headers.location);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.headers['cache-control']).toBe('private');
    await resource.expectOnly(user, [first.body as T]);
  });

  it('the same key with another body is 422 IDEMPOTENCY_KEY_REUSED and creates nothing', async () => {
    const { user, api } = await newUser();
    const key = randomUUID();
    const body = resource.body();
    const first = await api.post(resource.path, body, withKey(key));
    expect(first.status).toBe(201);
    // Another body altogether, and the same body with one more field.
    for (const other of [resource.body(), { ...body, ...resource.change() }]) {
      expectProblem(
        await api.post(resource.path, other, withKey(key)),
        422,
        'IDEMPOTENCY_KEY_REUSED',
      );
    }
    await resource.expectOnly(user, [first.body as T]);
    // The first response is still the one replayed.
    const again = await api.post(resource.path, body, withKey(key));
    expect(again.body).toEqual(first.body);
  });

  it(`${options.concurrentRequests} concurrent requests with one key create exactly one ${resource.noun} (all 201: no 409)`, async () => {
    const { user, api } = await newUser();
    const key = randomUUID();
    const body = resource.body();
    const replies = await Promise.all(
      Array.from({ length: options.concurrentRequests }, () =>
        api.post<T>(resource.path, body, withKey(key)),
      ),
    );
    expect(replies.map((reply) => reply.status)).toEqual(replies.map(() => 201));
    expect(new Set(replies.map((reply) => reply.body.id)).size).toBe(1);
    const originals = replies.filter((reply) => reply.headers['idempotent-replayed'] === undefined);
    expect(originals).toHaveLength(1);
    await resource.expectOnly(user, [originals[0].body]);
  });

  it('keys are per user: another user may use the same key', async () => {
    const a = await newUser();
    const b = await newUser();
    const key = `shared-${randomUUID()}`;
    const body = resource.body();
    const fromA = await a.api.post(resource.path, body, withKey(key));
    const fromB = await b.api.post(resource.path, body, withKey(key));
    expect([fromA.status, fromB.status]).toEqual([201, 201]);
    expect(fromB.body.id).not.toBe(fromA.body.id);
    expect(fromB.headers['idempotent-replayed']).toBeUndefined();
    await resource.expectOnly(a.user, [fromA.body]);
    await resource.expectOnly(b.user, [fromB.body]);
  });
}
