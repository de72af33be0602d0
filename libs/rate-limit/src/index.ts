export { FALLBACK_CLIENTS, FallbackLimiter } from './fallback-limiter';
export { OVERRIDES_RELOAD_MS, RateLimitOverrides } from './rate-limit-overrides';
export { RateLimitModule } from './rate-limit.module';
export { DECISION_TIMEOUT_MS, RedisThrottlerStorage } from './redis-throttler.storage';
export { BUCKETS, SLIDING_WINDOW_LUA } from './sliding-window';
export { TIER_LIMITS, WINDOW_MS } from './tiers';
