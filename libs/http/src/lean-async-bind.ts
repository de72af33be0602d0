import { AsyncResource } from 'node:async_hooks';

type Bind = (
  this: AsyncResource,
  fn: (...args: unknown[]) => unknown,
  thisArg?: unknown,
) => unknown;

/**
 * Replaces Node 20's `AsyncResource.prototype.bind` with one that does the same minus the
 * deprecated `asyncResource` accessor (DEP0172) it adds to every bound function.
 *
 * Why: that accessor is built with `util.deprecate`, which gives each bound function a prototype
 * of its own, so every call of `bind` leaves new objects in old space pointing at a young closure
 * that holds the bound function and, through it, the whole request. The scavenger takes those
 * pointers as roots: each request's objects survive and are promoted until a full collection.
 * Fastify binds the body parser's callback on every request with a body, and Nest's interceptor
 * chain binds twice per call, so the api promoted ~7 MB per scavenge at 500 requests/s, and each
 * scavenge took ~30 ms instead of ~1 ms (measured with --trace-gc; see the README's Benchmark
 * section). Nothing in our code or our dependencies reads the accessor. Node itself stopped
 * doing this in v24 (nodejs/node#58218, #59195) and drops the accessor in a later major
 * (#58618); Node 20 keeps it, so this is the backport, for the one runtime we ship on.
 *
 * The replacement runs `fn` in the resource's async scope exactly as Node's does (the same
 * `runInAsyncScope` call, the same `this` handling, the same `length`). It is installed only when
 * the running Node still adds the accessor, so on a Node without it this does nothing.
 */
export function installLeanAsyncBind(): void {
  const probe = new AsyncResource('taskhub.probe').bind(() => undefined);
  if (Object.getOwnPropertyDescriptor(probe, 'asyncResource') === undefined) return;
  const prototype = AsyncResource.prototype as unknown as { bind: Bind };
  const bind: Bind = function (this: AsyncResource, fn, thisArg) {
    return bindTo(this, fn, thisArg);
  };
  // Node's own, for whoever needs to compare (the spec; every realm sees the same symbol).
  Object.defineProperty(bind, NATIVE_ASYNC_BIND, { value: prototype.bind });
  prototype.bind = bind;
}

/** On the installed bind: Node's own. */
export const NATIVE_ASYNC_BIND = Symbol.for('taskhub.nativeAsyncBind');

function bindTo(
  resource: AsyncResource,
  fn: (...args: unknown[]) => unknown,
  thisArg: unknown,
): unknown {
  if (typeof fn !== 'function') {
    throw new TypeError(`The "fn" argument must be of type function. Received ${typeof fn}`);
  }
  const bound =
    thisArg === undefined
      ? function (this: unknown, ...args: unknown[]) {
          return resource.runInAsyncScope(fn, this, ...args);
        }
      : resource.runInAsyncScope.bind(resource, fn, thisArg);
  Object.defineProperty(bound, 'length', {
    configurable: true,
    enumerable: false,
    value: fn.length,
    writable: false,
  });
  return bound;
}
