import type { TestUser } from '../factories';
import type { Reply } from '../http';
import { STRONG_ETAG } from '../patterns';
import { expectProblem } from '../problems';
import { type Client, registerClient } from '../resources';
import { type Resource, type Stored, filledLater } from './resource';

/** A user of the block's own, and a client as them. */
export interface UserFixture {
  user: TestUser;
  api: Client;
}

export interface ConditionalOptions {
  /**
   * The writes that hold a stale If-Match, one test per group: [['PATCH'], ['DELETE']] or
   * [['PATCH', 'DELETE']].
   */
  staleWrites: ('PATCH' | 'DELETE')[][];
  /** Whether the DELETE with the current ETag sends it in a list, after a stale one. */
  currentInAList: boolean;
  /** How many writers race with the same If-Match, one test per number. */
  concurrentWriters: number[];
}

/**
 * Registers, in the current describe block, the ETag and If-None-Match / If-Match behaviour of one
 * item (CONTRACT §4): strong ETags and 304s, a new ETag for each write, 412 PRECONDITION_FAILED
 * for a stale If-Match (the item unchanged), If-Match with the current tag or *, and concurrent
 * writers with the same If-Match (exactly one wins). Returns the block's user, made in a beforeAll.
 */
export function testConditionalRequests<T extends Stored>(
  resource: Resource<T>,
  options: ConditionalOptions,
): UserFixture {
  const fixture = filledLater<UserFixture>();
  beforeAll(async () => {
    Object.assign(fixture, await registerClient(resource.app()));
  });

  const get = (id: string, headers?: Record<string, string>): Promise<Reply<T>> =>
    fixture.api.get(resource.url(id), headers);
  const etagOf = async (id: string): Promise<string> => String((await get(id)).headers.etag);
  const patch = (id: string, headers?: Record<string, string>): Promise<Reply<T>> =>
    fixture.api.patch(resource.url(id), resource.change(), headers);
  const newItem = (): Promise<T> => resource.create(fixture.user);

  it('GET one returns a strong ETag; If-None-Match with it is 304 with an empty body', async () => {
    const item = await newItem();
    const etag = await etagOf(item.id);
    expect(etag).toMatch(STRONG_ETAG);
    expect(await etagOf(item.id)).toBe(etag);

    const notModified = await get(item.id, { 'if-none-match': etag });
    expect(notModified.status).toBe(304);
    expect(notModified.raw).toBe('');
    expect(notModified.headers.etag).toBe(etag);
    expect(notModified.headers['cache-control']).toBe('private');

    for (const header of [`"nope", ${etag}`, '*', `W/${etag}`]) {
      expect((await get(item.id, { 'if-none-match': header })).status).toBe(304);
    }
    const other = await get(item.id, { 'if-none-match': '"nope"' });
    expect(other.status).toBe(200);
    expect(other.body).toEqual(item);
  });

  it('after a PATCH the ETag changes, and the old one no longer gives 304', async () => {
    const item = await newItem();
    const old = await etagOf(item.id);
    const change = resource.change();
    const patched = await fixture.api.patch(resource.url(item.id), change);
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ ...change, version: item.version + 1 });
    const current = String(patched.headers.etag);
    expect(current).toMatch(STRONG_ETAG);
    expect(current).not.toBe(old);
    expect(await etagOf(item.id)).toBe(current);

    const stale = await get(item.id, { 'if-none-match': old });
    expect(stale.status).toBe(200);
    expect(stale.body).toEqual(patched.body);
    expect(stale.headers.etag).toBe(current);
    expect((await get(item.id, { 'if-none-match': current })).status).toBe(304);
  });

  for (const methods of options.staleWrites) {
    const [are, change] = methods.length > 1 ? ['are', 'change'] : ['is', 'changes'];
    const name = `${methods.join(' and ')} with a stale If-Match ${are} 412 PRECONDITION_FAILED`;
    it(`${name} and ${change} nothing`, async () => {
      const item = await newItem();
      const stale = await etagOf(item.id);
      const second = await patch(item.id);
      expect(second.status).toBe(200);
      for (const method of methods) {
        const headers = { 'if-match': stale };
        const url = resource.url(item.id);
        const reply =
          method === 'PATCH'
            ? await fixture.api.patch(url, resource.change(), headers)
            : await fixture.api.delete(url, headers);
        expectProblem(reply, 412, 'PRECONDITION_FAILED');
      }
      expect((await get(item.id)).body).toEqual(second.body);
    });
  }

  const alsoInAList = options.currentInAList ? ' (also in a list of tags)' : '';
  it(`PATCH and DELETE with the current If-Match succeed${alsoInAList}`, async () => {
    const item = await newItem();
    const patched = await patch(item.id, { 'if-match': await etagOf(item.id) });
    expect(patched.status).toBe(200);
    expect(patched.body.version).toBe(item.version + 1);
    const current = String(patched.headers.etag);
    const deleted = await fixture.api.delete(resource.url(item.id), {
      'if-match': options.currentInAList ? `"stale", ${current}` : current,
    });
    expect(deleted.status).toBe(204);
    expect((await get(item.id)).status).toBe(404);
  });

  it('If-Match: * matches whatever the current version is', async () => {
    const item = await newItem();
    expect((await patch(item.id)).status).toBe(200);
    const change = resource.change();
    const patched = await fixture.api.patch(resource.url(item.id), change, { 'if-match': '*' });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ ...change, version: item.version + 2 });
    const deleted = await fixture.api.delete(resource.url(item.id), { 'if-match': '*' });
    expect(deleted.status).toBe(204);
    expect((await get(item.id)).status).toBe(404);
  });

  it.each(options.concurrentWriters)(
    '%i concurrent PATCHes with the same If-Match: exactly one 200, the rest 412, version +1',
    async (writers) => {
      const item = await newItem();
      const etag = await etagOf(item.id);
      const replies = await Promise.all(
        Array.from({ length: writers }, () => patch(item.id, { 'if-match': etag })),
      );
      expect(replies.map((reply) => reply.status).sort()).toEqual(
        replies.map((_, i) => (i === 0 ? 200 : 412)),
      );
      const winner = replies.find((reply) => reply.status === 200)!;
      for (const reply of replies.filter((r) => r !== winner)) {
        expectProblem(reply, 412, 'PRECONDITION_FAILED');
      }
      const final = await get(item.id);
      expect(final.body.version).toBe(item.version + 1);
      expect(final.body).toEqual(winner.body);
    },
  );

  return fixture;
}
