import { Global, Module } from '@nestjs/common';
import { makeCounterProvider } from '@willsoto/nestjs-prometheus';
import { CacheService } from './cache.service';

/** The read cache (CONTRACT §7): CacheService for @Cached() and @Invalidates() routes. */
@Global()
@Module({
  providers: [
    CacheService,
    makeCounterProvider({
      name: 'cache_requests_total',
      help:
        'Cache lookups by level (local: in process, redis: shared) and result: hit, miss, ' +
        'stale (served after a failed load) or bypass (the level could not be used).',
      labelNames: ['level', 'result'],
    }),
  ],
  exports: [CacheService],
})
export class CacheModule {}
