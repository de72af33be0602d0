export { buildDataSourceOptions } from './data-source-options';
export { DatabaseModule } from './database.module';
export * from './entities';
export { ensureDatabase, runMigrations } from './prepare-database';
export { claimMessage, forgetProcessedMessages } from './processed-messages';
export { TASK_COLUMNS, filterTasks, toTaskResource } from './tasks';
export type { TaskFilter, TaskResource } from './tasks';
