import { ApiKeyEntity } from './api-key.entity';
import { CategoryEntity } from './category.entity';
import { IdempotencyKeyEntity } from './idempotency-key.entity';
import { JobEntity } from './job.entity';
import { RateLimitConfigEntity } from './rate-limit-config.entity';
import { RefreshTokenEntity } from './refresh-token.entity';
import { TaskEntity } from './task.entity';
import { UserEntity } from './user.entity';
import { WebhookDeliveryEntity } from './webhook-delivery.entity';
import { WebhookEntity } from './webhook.entity';

export {
  ApiKeyEntity,
  CategoryEntity,
  IdempotencyKeyEntity,
  JobEntity,
  RateLimitConfigEntity,
  RefreshTokenEntity,
  TaskEntity,
  UserEntity,
  WebhookDeliveryEntity,
  WebhookEntity,
};
export { EXPORT_FORMATS, JOB_STATUSES, JOB_TYPES } from './job.entity';
export type { ExportFormat, ExportParams, JobStatus, JobType } from './job.entity';
export { DELIVERY_STATUSES } from './webhook-delivery.entity';
export type { DeliveryStatus } from './webhook-delivery.entity';
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
  WebhookEntity,
  WebhookDeliveryEntity,
  JobEntity,
];
