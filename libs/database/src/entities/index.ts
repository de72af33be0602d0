import { ApiKeyEntity } from './api-key.entity';
import { CategoryEntity } from './category.entity';
import { IdempotencyKeyEntity } from './idempotency-key.entity';
import { RateLimitConfigEntity } from './rate-limit-config.entity';
import { RefreshTokenEntity } from './refresh-token.entity';
import { TaskEntity } from './task.entity';
import { UserEntity } from './user.entity';

export {
  ApiKeyEntity,
  CategoryEntity,
  IdempotencyKeyEntity,
  RateLimitConfigEntity,
  RefreshTokenEntity,
  TaskEntity,
  UserEntity,
};
export * from './task.entity';
export * from './user.entity';

export const ENTITIES = [
  UserEntity,
  CategoryEntity,
  TaskEntity,
  RefreshTokenEntity,
  IdempotencyKeyEntity,
  ApiKeyEntity,
  RateLimitConfigEntity,
];
