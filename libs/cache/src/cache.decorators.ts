import { SetMetadata, UseInterceptors, applyDecorators } from '@nestjs/common';
import { ApiExtension } from '@nestjs/swagger';
import { CACHE_POLICY, CachePolicy } from './cache-policy';
import { CachingInterceptor } from './caching.interceptor';

/**
 * A read of the caller's `resource` (such as 'tasks'), served through the two-level cache, with
 * X-Cache saying where it came from.
 */
export const Cached = (resource: string) =>
  applyDecorators(
    SetMetadata(CACHE_POLICY, { reads: resource } satisfies CachePolicy),
    UseInterceptors(CachingInterceptor),
    // The OpenAPI document gives its responses X-Cache (apps/api/src/openapi.ts).
    ApiExtension('x-cached', true),
  );

/** A write that changes the caller's `resources`: their cached reads are dropped everywhere. */
export const Invalidates = (...resources: string[]) =>
  applyDecorators(
    SetMetadata(CACHE_POLICY, { invalidates: resources } satisfies CachePolicy),
    UseInterceptors(CachingInterceptor),
  );
