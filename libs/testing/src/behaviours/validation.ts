import type { Body, TestUser } from '../factories';
import { expectProblem, expectValidationError } from '../problems';
import { type Client, registerClient } from '../resources';
import { type Resource, type Stored, filledLater } from './resource';

/** A user with one item, the target of the refused writes. */
export interface TargetFixture<T extends Stored> {
  user: TestUser;
  api: Client;
  target: T;
}

/**
 * A body a create or an update must refuse, named for the test, and the field the refusal names.
 * The body is a function when it depends on a fixture made in a beforeAll.
 */
export type InvalidField = [name: string, body: Body | (() => Body), field: string];

export interface ValidationOptions {
  /** The target's body (over the factory's defaults): better with every field set. */
  target: Body;
  /** A required field, and a POST body (otherwise valid) without it. */
  required: [field: string, body: Body];
  invalidFields: InvalidField[];
}

/** A new user with one item made of `body`, and after each test of the block: both unchanged. */
function targetFixture<T extends Stored>(resource: Resource<T>, body: Body): TargetFixture<T> {
  const fixture = filledLater<TargetFixture<T>>();
  beforeAll(async () => {
    Object.assign(fixture, await registerClient(resource.app()));
    fixture.target = await resource.create(fixture.user, body);
  });
  afterEach(async () => {
    await resource.expectStored(fixture.user, fixture.target);
    await resource.expectOnly(fixture.user, [fixture.target]);
  });
  return fixture;
}

/**
 * Registers, in the current describe block: POST without the required field, and POST or PATCH
 * with each invalid field, an empty PATCH, or an unknown field next to valid ones, are 400
 * VALIDATION_FAILED naming the field; and after each test of the block (the spec's own ones
 * included) the user still has only the target, unchanged. Returns the fixture.
 */
export function testValidation<T extends Stored>(
  resource: Resource<T>,
  options: ValidationOptions,
): TargetFixture<T> {
  const fixture = targetFixture(resource, options.target);
  const [required, withoutRequired] = options.required;
  const bodyOf = (body: InvalidField[1]): Body => (typeof body === 'function' ? body() : body);

  it(`POST without a ${required} is 400 naming ${required}, and creates nothing`, async () => {
    expectValidationError(await fixture.api.post(resource.path, withoutRequired), required);
  });

  it.each(options.invalidFields)(
    'POST with %s is 400 VALIDATION_FAILED and creates nothing',
    async (_name, body, field) => {
      const reply = await fixture.api.post(resource.path, { ...resource.body(), ...bodyOf(body) });
      expect(expectValidationError(reply, field).detail).toContain(field);
    },
  );

  it.each(options.invalidFields)(
    'PATCH with %s is 400 VALIDATION_FAILED and changes nothing',
    async (_name, body, field) => {
      const url = resource.url(fixture.target.id);
      expectValidationError(await fixture.api.patch(url, bodyOf(body)), field);
    },
  );

  it('an empty PATCH is 400 VALIDATION_FAILED and changes nothing', async () => {
    const reply = await fixture.api.patch(resource.url(fixture.target.id), {});
    expectProblem(reply, 400, 'VALIDATION_FAILED');
  });

  it('an unknown field fails the whole request, even next to valid ones', async () => {
    const body = { ...resource.change(), owner: 'me' };
    const reply = await fixture.api.patch(resource.url(fixture.target.id), body);
    const problem = expectValidationError(reply, 'owner');
    expect(problem.errors).toContainEqual({ field: 'owner', message: expect.any(String) });
  });

  return fixture;
}

/** Raw request bodies, named for the test. */
export type RawBodies = [name: string, raw: string][];

export interface RequestBodyOptions {
  /** Bodies that are not JSON: 400 MALFORMED_JSON. */
  malformed: RawBodies;
  /** Content types other than JSON, and a body in each: 415 UNSUPPORTED_MEDIA_TYPE. */
  unsupported: RawBodies;
  /** JSON values that are not objects: 400 VALIDATION_FAILED. */
  notObjects: [name: string, value: unknown][];
}

/**
 * Registers, in the current describe block: POST and PATCH refuse bodies that are not JSON (400),
 * over 1 MiB (413), of another media type (415), or JSON but not an object (400); and after each
 * test of the block (the spec's own ones included) the user still has only the target,
 * unchanged. Returns the fixture.
 */
export function testRequestBodies<T extends Stored>(
  resource: Resource<T>,
  options: RequestBodyOptions,
): TargetFixture<T> {
  const fixture = targetFixture(resource, {});

  /** POST and PATCH of `raw` are both the problem `status` `code`. */
  async function expectBothRefused(
    raw: string,
    headers: Record<string, string> | undefined,
    status: number,
    code: string,
  ): Promise<void> {
    expectProblem(await fixture.api.post(resource.path, raw, headers), status, code);
    const url = resource.url(fixture.target.id);
    expectProblem(await fixture.api.patch(url, raw, headers), status, code);
  }

  it.each(options.malformed)('%s is 400 MALFORMED_JSON (POST and PATCH)', async (_name, raw) => {
    await expectBothRefused(raw, { 'content-type': 'application/json' }, 400, 'MALFORMED_JSON');
  });

  it('a body over 1 MiB is 413 PAYLOAD_TOO_LARGE (POST and PATCH)', async () => {
    const huge = JSON.stringify({ ...resource.body(), padding: 'p'.repeat(1024 * 1024) });
    await expectBothRefused(huge, undefined, 413, 'PAYLOAD_TOO_LARGE');
  });

  it.each(options.unsupported)(
    'Content-Type %s is 415 UNSUPPORTED_MEDIA_TYPE (POST and PATCH)',
    async (type, raw) => {
      await expectBothRefused(raw, { 'content-type': type }, 415, 'UNSUPPORTED_MEDIA_TYPE');
    },
  );

  it.each(options.notObjects)(
    'a JSON body that is %s is 400 VALIDATION_FAILED (POST and PATCH)',
    async (_name, value) => {
      await expectBothRefused(JSON.stringify(value), undefined, 400, 'VALIDATION_FAILED');
    },
  );

  return fixture;
}
