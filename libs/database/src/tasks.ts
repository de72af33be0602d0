import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import type { TaskEntity, TaskPriority, TaskStatus } from './entities/task.entity';

/**
 * What `GET /v1/tasks` and a task export filter by. The api's list and the worker's export both
 * apply it through filterTasks, so an export holds exactly what the list with the same filter
 * shows. Dates are Dates in the api and ISO strings once the filter has travelled as JSON in a
 * job's params; Postgres takes either.
 */
export interface TaskFilter {
  status?: TaskStatus;
  priority?: TaskPriority;
  categoryId?: string;
  tag?: string;
  dueBefore?: Date | string;
  dueAfter?: Date | string;
  /** Case-insensitive text in the title or description. */
  q?: string;
}

// Must be the expression of the trigram index tasks_search_idx, or the index is not used.
const SEARCH_TEXT = `(t.title || ' ' || coalesce(t.description, ''))`;
const escapeLike = (text: string): string => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/** Restricts `qb` (over `tasks` as `t`) to the owner's tasks that pass `filter`. */
export function filterTasks<T extends ObjectLiteral>(
  qb: SelectQueryBuilder<T>,
  userId: string,
  filter: TaskFilter,
): SelectQueryBuilder<T> {
  qb.where('t.user_id = :userId', { userId });
  if (filter.status) qb.andWhere('t.status = :status', { status: filter.status });
  if (filter.priority) qb.andWhere('t.priority = :priority', { priority: filter.priority });
  if (filter.categoryId)
    qb.andWhere('t.category_id = :categoryId', { categoryId: filter.categoryId });
  if (filter.tag) qb.andWhere('t.tags @> ARRAY[:tag]::text[]', { tag: filter.tag });
  if (filter.dueBefore) qb.andWhere('t.due_date < :dueBefore', { dueBefore: filter.dueBefore });
  if (filter.dueAfter) qb.andWhere('t.due_date > :dueAfter', { dueAfter: filter.dueAfter });
  if (filter.q)
    qb.andWhere(`${SEARCH_TEXT} ILIKE :pattern`, { pattern: `%${escapeLike(filter.q)}%` });
  return qb;
}

/**
 * The columns of `tasks` (as `t`) aliased to TaskEntity's property names, for raw queries whose
 * rows are then TaskEntity-shaped as they come (no ORM hydration).
 */
export const TASK_COLUMNS = `t.id, t.user_id AS "userId", t.category_id AS "categoryId", t.title,
  t.description, t.status, t.priority, t.due_date AS "dueDate", t.tags, t.version,
  t.created_at AS "createdAt", t.updated_at AS "updatedAt"`;

/** A task as the API shows it (CONTRACT §4), and as exports write it. */
export interface TaskResource {
  id: string;
  title: string;
  description: string | null;
  status: TaskStatus;
  priority: TaskPriority;
  dueDate: string | null;
  categoryId: string | null;
  tags: string[];
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** A timestamptz(3) as toISOString() writes it (UTC, milliseconds, `Z`); NULL stays NULL. */
const isoUtc = (column: string): string =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * toTaskResource in SQL, as jsonb, over a row with TASK_COLUMNS's names (`row` is its alias):
 * for a statement that writes a task and its event in the outbox at once. The two must agree;
 * test/task-events.e2e-spec.ts holds them to it. Years are 1 to 9999 (isIsoDateTime), which
 * both write with four digits.
 */
export const taskResourceJson = (row: string): string =>
  `jsonb_build_object('id', ${row}.id, 'title', ${row}.title, 'description', ${row}.description,
    'status', ${row}.status, 'priority', ${row}.priority, 'dueDate', ${isoUtc(`${row}."dueDate"`)},
    'categoryId', ${row}."categoryId", 'tags', ${row}.tags, 'version', ${row}.version,
    'createdAt', ${isoUtc(`${row}."createdAt"`)}, 'updatedAt', ${isoUtc(`${row}."updatedAt"`)})`;

export function toTaskResource(task: TaskEntity): TaskResource {
  return {
    id: task.id,
    title: task.title,
    description: task.description,
    status: task.status,
    priority: task.priority,
    dueDate: task.dueDate ? task.dueDate.toISOString() : null,
    categoryId: task.categoryId,
    tags: task.tags,
    version: task.version,
    createdAt: task.createdAt.toISOString(),
    updatedAt: task.updatedAt.toISOString(),
  };
}
