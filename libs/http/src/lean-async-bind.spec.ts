import { AsyncLocalStorage, AsyncResource, executionAsyncId } from 'node:async_hooks';
import { NATIVE_ASYNC_BIND, installLeanAsyncBind } from './lean-async-bind';

type Bind = AsyncResource['bind'];

describe('installLeanAsyncBind', () => {
  // The patch is process-wide, and Jest runs other spec files (whose apps install it) in this
  // process before this one may: start from Node's own bind, and put back what was there.
  const before = AsyncResource.prototype.bind as Bind & { [NATIVE_ASYNC_BIND]?: Bind };
  const native = before[NATIVE_ASYNC_BIND] ?? before;

  beforeAll(() => {
    AsyncResource.prototype.bind = native;
    installLeanAsyncBind();
  });
  afterAll(() => {
    AsyncResource.prototype.bind = before;
  });

  it('binds without the deprecated accessor that promoted every request', () => {
    const bound = new AsyncResource('spec').bind(() => 1);
    expect(Object.getOwnPropertyDescriptor(bound, 'asyncResource')).toBeUndefined();
    // Installed where Node's own bind adds the accessor (up to Node 24), and only there: from
    // Node 25 on, Node's own bind is left in place.
    const own = native.call(new AsyncResource('spec'), () => 1);
    const nodeAddsIt = Object.getOwnPropertyDescriptor(own, 'asyncResource') !== undefined;
    expect(nodeAddsIt).toBe(Number(process.versions.node.split('.')[0]) <= 24);
    if (nodeAddsIt) expect(AsyncResource.prototype.bind).not.toBe(native);
    else expect(AsyncResource.prototype.bind).toBe(native);
  });

  it('runs the function in the resource’s async scope, as Node’s bind does', () => {
    const storage = new AsyncLocalStorage<string>();
    let resource!: AsyncResource;
    let bound!: (a: number, b: number) => [string | undefined, number, number];
    storage.run('inside', () => {
      resource = new AsyncResource('spec');
      bound = resource.bind((a: number, b: number) => [
        storage.getStore(),
        executionAsyncId(),
        a + b,
      ]);
    });
    expect(storage.getStore()).toBeUndefined();
    expect(bound(2, 3)).toEqual(['inside', resource.asyncId(), 5]);
    expect(bound.length).toBe(2);
  });

  it('keeps the caller’s this, or the one given to bind', () => {
    function self(this: unknown) {
      return this;
    }
    const resource = new AsyncResource('spec');
    const receiver = { name: 'receiver' };
    const fixed = { name: 'fixed' };
    const unfixed = resource.bind(self);
    expect(unfixed.call(receiver)).toBe(receiver);
    const bindWithThis = resource.bind as unknown as (
      fn: unknown,
      thisArg: unknown,
    ) => () => unknown;
    expect(bindWithThis.call(resource, self, fixed).call(receiver)).toBe(fixed);
    expect(() => (resource.bind as (fn: unknown) => unknown)('not a function')).toThrow(
      /"fn" argument must be of type function/,
    );
  });
});
