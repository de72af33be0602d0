export const CACHE_POLICY = Symbol('CACHE_POLICY');

/** A read cached in its caller's scope of `reads`, or a write that changes `invalidates`. */
export type CachePolicy = { reads: string } | { invalidates: readonly string[] };
