import { AsyncResource } from 'node:async_hooks';

type Bind = (
  this: AsyncResource,
  fn: (...args: unknown[]) => unknown,
  thisArg?: unknown,
) => unknown;

/**
 * Replaces `AsyncResource.prototype.bind` with one that does the same minus the deprecated
 * `asyncResource` accessor (DEP0172) that Node adds to every bound function up to Node 24.
 *
 * Why: V8 allocates an accessor's getter/setter pair in old space, so every call of `bind` leaves
 * an old object pointing at two young closures that share `bind`'s scope, and through it the
 * bound function and the whole request. The scavenger takes such pointers as roots: each
 * request's objects survive and are promoted until a full collection. (Node 20's
 * `util.deprecate` also gives the getter and the setter a prototype of their own, which does the
 * same again.) Fastify binds the body parser's callback on every request with a body, and Nest's
 * interceptor chain binds twice per call, so the api promoted ~7 MB per scavenge at 500
 * requests/s on Node 20, and each scavenge took ~30 ms instead of ~1 ms (measured with
 * --trace-gc; see the README's Benchmark section). Nothing in our code or our dependencies reads
 * the accessor.
 *
 * What each Node does (400 000 binds with 200 in flight, Node's bind vs this one, 2026-12):
 * - 20 (20.20): the accessor and the prototypes. Installed: scavenges ~29 ms → ~2 ms.
 * - 22 (22.23) and 24 (24.21): the accessor still, without the prototypes (nodejs/node#59195).
 *   Installed: scavenges ~16 ms (22) and ~40 ms (24) → ~3 ms; the accessor alone costs that.
 * - 25 and later: no accessor (nodejs/node#58618 removed it). Not installed: Node's own bind.
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
