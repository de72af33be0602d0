export { Cached, Invalidates } from './cache.decorators';
export { CacheModule } from './cache.module';
export { CacheService } from './cache.service';
export type { CacheOutcome, CacheRead } from './cache.service';
