export { connectionOf } from './connection';
export { buildDataSourceOptions } from './data-source-options';
export { DatabaseModule } from './database.module';
export * from './entities';
export { forgetExpiredIdempotencyKeys, IDEMPOTENCY_KEY_TTL_HOURS } from './idempotency-keys';
export { ensureDatabase, runMigrations } from './prepare-database';
export { claimMessage, forgetProcessedMessages } from './processed-messages';
export { TASK_COLUMNS, filterTasks, taskResourceJson, toTaskResource } from './tasks';
export type { TaskFilter, TaskResource } from './tasks';
