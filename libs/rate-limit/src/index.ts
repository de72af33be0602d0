export { RateLimitOverrides } from './rate-limit-overrides';
export { RateLimitModule } from './rate-limit.module';
export { RedisThrottlerStorage } from './redis-throttler.storage';
export { SLIDING_WINDOW_LUA } from './sliding-window';
export { TIER_LIMITS } from './tiers';
