import type { Principal } from '@app/auth';
import { apiExceptionIn } from '@app/http';
import {
  CallHandler,
  ExecutionContext,
  HttpException,
  Injectable,
  NestInterceptor,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import {
  Observable,
  catchError,
  concatMap,
  from,
  lastValueFrom,
  map,
  mergeMap,
  of,
  throwError,
} from 'rxjs';
import { CACHE_POLICY, CachePolicy } from './cache-policy';
import { CacheService } from './cache.service';

type Handler = (...args: unknown[]) => unknown;

/**
 * The cache key of a read, within its owner's scope: the route template, its path parameters and
 * the query, normalised (parameters sorted, so `?a=1&b=2` and `?b=2&a=1` share an entry) and
 * hashed, so no search text ends up in a Redis key name.
 */
function requestKey(request: FastifyRequest): string {
  let key = request.routeOptions.url ?? '';
  const params = request.params as Record<string, string>;
  for (const name in params) key += `|${encodeURIComponent(params[name] ?? '')}`;
  if (request.url.includes('?')) {
    const query = request.query as Record<string, string | string[]>;
    const normalised = Object.keys(query)
      .sort()
      .map((name) => {
        const value = query[name];
        const values = Array.isArray(value) ? value : [value ?? ''];
        return `${encodeURIComponent(name)}=${values.map(encodeURIComponent).join(',')}`;
      })
      .join('&');
    key += `?${createHash('sha256').update(normalised).digest('base64url')}`;
  }
  return key;
}

/**
 * A failed write changed nothing if it was refused: a 4xx, or a dependency refused before any
 * work (DEPENDENCY_UNAVAILABLE: an open breaker, no connection). Anything else, a timeout
 * included, may have committed, and drops what the write would have changed.
 */
function mayHaveWritten(error: unknown): boolean {
  if (apiExceptionIn(error)?.code === 'DEPENDENCY_UNAVAILABLE') return false;
  return !(error instanceof HttpException) || error.getStatus() >= 500;
}

/**
 * Applied per route by @Cached() and @Invalidates(), never globally: it runs after the auth
 * guard, so every entry is keyed by the caller's owner and no response reaches another user.
 * Reads go through CacheService and say where they came from in X-Cache; writes invalidate what
 * they change (once they answered, or failed in a way that may have written) before responding.
 */
@Injectable()
export class CachingInterceptor implements NestInterceptor {
  private readonly policies = new WeakMap<Handler, CachePolicy>();

  constructor(
    private readonly reflector: Reflector,
    private readonly cache: CacheService,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const policy = this.policyOf(context.getHandler() as Handler);
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest & { user: Principal | null }>();
    const owner = request.user?.userId;
    // Both decorators come with @Scopes(): a route without a caller is a programming error.
    if (owner === undefined)
      throw new Error('@Cached() and @Invalidates() need a signed-in caller');
    if ('invalidates' in policy) {
      const invalidate = () => this.cache.invalidate(owner, policy.invalidates);
      return next.handle().pipe(
        concatMap(async (value: unknown) => {
          await invalidate();
          return value;
        }),
        catchError((error: unknown) =>
          mayHaveWritten(error)
            ? from(invalidate()).pipe(mergeMap(() => throwError(() => error)))
            : throwError(() => error),
        ),
      );
    }
    const reply = http.getResponse<FastifyReply>();
    const read = this.cache.read<unknown>(`${policy.reads}:${owner}`, requestKey(request), () =>
      lastValueFrom(next.handle()),
    );
    if (!(read instanceof Promise)) {
      reply.header('x-cache', read.outcome);
      return of(read.value);
    }
    return from(read).pipe(
      map(({ value, outcome }) => {
        reply.header('x-cache', outcome);
        return value;
      }),
    );
  }

  private policyOf(handler: Handler): CachePolicy {
    let policy = this.policies.get(handler);
    if (policy === undefined) {
      policy = this.reflector.get<CachePolicy | undefined>(CACHE_POLICY, handler);
      if (policy === undefined) throw new Error(`${handler.name}: use @Cached() or @Invalidates()`);
      this.policies.set(handler, policy);
    }
    return policy;
  }
}
