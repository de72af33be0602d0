import { AsyncLocalStorage, AsyncResource, executionAsyncId } from 'node:async_hooks';
import { installLeanAsyncBind } from './lean-async-bind';

describe('installLeanAsyncBind', () => {
  const original = AsyncResource.prototype.bind;

  beforeAll(() => installLeanAsyncBind());
  // The patch is process-wide: put Node's own back, so that the api's own install is what the
  // end-to-end specs see.
  afterAll(() => {
    AsyncResource.prototype.bind = original;
  });

  it('binds without the deprecated accessor that promoted every request', () => {
    expect(AsyncResource.prototype.bind).not.toBe(original);
    const bound = new AsyncResource('spec').bind(() => 1);
    expect(Object.getOwnPropertyDescriptor(bound, 'asyncResource')).toBeUndefined();
    // What Node's own bind adds on this Node (the install is a no-op where it does not).
    const native = original.call(new AsyncResource('spec'), () => 1);
    expect(Object.getOwnPropertyDescriptor(native, 'asyncResource')).toBeDefined();
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
    expect(() => (resource.bind as (fn: unknown) => unknown)('not a function')).toThrow(TypeError);
  });
});
