import { randomUUID } from 'node:crypto';
import type { Reply } from '../http';
import { expectProblem } from '../problems';
import { type Client, registerClient } from '../resources';
import { type Resource, type Stored } from './resource';

/**
 * Registers, in the current describe block: DELETE is 204 with no body, after which GET, PATCH and
 * DELETE of the item are 404 and only the user's other item is left.
 */
export function testDelete<T extends Stored>(resource: Resource<T>): void {
  it('DELETE is 204 with no body; then GET, PATCH and DELETE are 404 and the list is empty', async () => {
    const { user, api } = await registerClient(resource.app());
    const item = await resource.create(user);
    const kept = await resource.create(user);
    const url = resource.url(item.id);
    const deleted = await api.delete(url);
    expect(deleted.status).toBe(204);
    expect(deleted.raw).toBe('');
    expect(deleted.headers['cache-control']).toBe('private');

    expectProblem(await api.get(url), 404, 'NOT_FOUND');
    expectProblem(await api.patch(url, resource.change()), 404, 'NOT_FOUND');
    expectProblem(await api.delete(url), 404, 'NOT_FOUND');
    await resource.expectOnly(user, [kept]);
  });
}

/**
 * Registers, in the current describe block: every authenticated response, success or problem, is
 * Cache-Control: private, and a 201 names the new item in Location. `refused` sends a request that
 * `resource` refuses with `status` (given the item just created).
 */
export function testPrivateResponses<T extends Stored>(
  resource: Resource<T>,
  refused: { status: number; send: (api: Client, created: T) => Promise<Reply> },
): void {
  it(`every authenticated response is private; a 201 names the new ${resource.noun}`, async () => {
    const { api } = await registerClient(resource.app());
    const created = await api.post<T>(resource.path, resource.body());
    expect(created.headers.location).toBe(resource.url(created.body.id));
    const url = String(created.headers.location);
    const etag = String(created.headers.etag);
    const replies = [
      created,
      await api.get(resource.path),
      await api.get(url),
      await api.get(url, { 'if-none-match': etag }),
      await api.patch(url, resource.change()),
      await refused.send(api, created.body),
      await api.get(resource.url(randomUUID())),
      await api.patch(url, resource.change(), { 'if-match': etag }),
      await api.delete(url, { 'if-match': etag }),
      await api.delete(url),
    ];
    const expected = [201, 200, 200, 304, 200, refused.status, 404, 412, 412, 204];
    expect(replies.map((reply) => reply.status)).toEqual(expected);
    for (const reply of replies) expect(reply.headers['cache-control']).toBe('private');
  });
}
