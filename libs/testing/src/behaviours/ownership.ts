import { randomUUID } from 'node:crypto';
import { type TestUser, registerUser } from '../factories';
import { expectProblem } from '../problems';
import { type Client, clientFor } from '../resources';
import { type Resource, type Stored, filledLater } from './resource';

/** Ids that are not UUIDs (the last is one digit too long). */
export const MALFORMED_IDS = ['nope', '123', '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b0'];

/** Another user's item, and both users. */
export interface OwnershipFixture<T extends Stored> {
  owner: TestUser;
  ownerApi: Client;
  intruderUser: TestUser;
  intruder: Client;
  /** The owner's item, as created. */
  item: T;
  /** Its current ETag. */
  etag: string;
}

export interface OwnershipOptions<T extends Stored> {
  /** Creates the owner's item (by default resource.create(owner)). */
  item?: (owner: TestUser) => Promise<T>;
  /** Ids that are not UUIDs: GET, PATCH and DELETE of each are 404 NOT_FOUND (MALFORMED_IDS). */
  malformedIds?: string[];
}

/**
 * Registers, in the current describe block: another user's item is 404 NOT_FOUND (never 403) for
 * GET, PATCH and DELETE, whatever the If-Match, exactly as an id that does not exist; malformed ids
 * are 404 too; and after every test of the block (the spec's own ones included) the item is as it
 * was. Returns the fixture, filled in by a beforeAll.
 */
export function testOwnership<T extends Stored>(
  resource: Resource<T>,
  options: OwnershipOptions<T> = {},
): OwnershipFixture<T> {
  const fixture = filledLater<OwnershipFixture<T>>();

  beforeAll(async () => {
    const app = resource.app();
    fixture.owner = await registerUser(app);
    fixture.ownerApi = clientFor(app, fixture.owner);
    fixture.intruderUser = await registerUser(app);
    fixture.intruder = clientFor(app, fixture.intruderUser);
    fixture.item = await (options.item?.(fixture.owner) ?? resource.create(fixture.owner));
    fixture.etag = String((await resource.read(fixture.owner, fixture.item.id)).headers.etag);
  });

  afterEach(() => resource.expectStored(fixture.owner, fixture.item));

  it('GET is 404 NOT_FOUND, the same problem as for an id that does not exist', async () => {
    const theirs = await fixture.intruder.get(resource.url(fixture.item.id));
    const missing = await fixture.intruder.get(resource.url(randomUUID()));
    expectProblem(theirs, 404, 'NOT_FOUND');
    expectProblem(missing, 404, 'NOT_FOUND');
    expect(theirs.body.detail).toBe(missing.body.detail);
    expect(theirs.body.title).toBe(missing.body.title);
    expect(theirs.headers.etag).toBeUndefined();
  });

  const ifMatches: [string, () => Record<string, string>][] = [
    ['no If-Match', () => ({})],
    ['If-Match: *', () => ({ 'if-match': '*' })],
    ['the current If-Match', () => ({ 'if-match': fixture.etag })],
  ];

  it.each(ifMatches)('PATCH with %s is 404 and changes nothing', async (_name, headers) => {
    const url = resource.url(fixture.item.id);
    expectProblem(
      await fixture.intruder.patch(url, resource.change(), headers()),
      404,
      'NOT_FOUND',
    );
  });

  it.each(ifMatches)(
    `DELETE with %s is 404 and the ${resource.noun} still exists`,
    async (_name, headers) => {
      const url = resource.url(fixture.item.id);
      expectProblem(await fixture.intruder.delete(url, headers()), 404, 'NOT_FOUND');
    },
  );

  it.each(options.malformedIds ?? MALFORMED_IDS)(
    'a malformed id (%s) is 404 NOT_FOUND for GET, PATCH and DELETE',
    async (id) => {
      const { ownerApi } = fixture;
      expectProblem(await ownerApi.get(resource.url(id)), 404, 'NOT_FOUND');
      expectProblem(await ownerApi.patch(resource.url(id), resource.change()), 404, 'NOT_FOUND');
      expectProblem(await ownerApi.delete(resource.url(id)), 404, 'NOT_FOUND');
    },
  );

  return fixture;
}
