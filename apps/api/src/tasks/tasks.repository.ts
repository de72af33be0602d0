import { TASK_COLUMNS, type TaskEntity, connectionOf, taskResourceJson } from '@app/database';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Pool } from 'pg';
import { DataSource, type EntityManager } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';

/** What a write may set on a task, by TaskEntity's property names. */
export type TaskChanges = Partial<
  Pick<
    TaskEntity,
    'categoryId' | 'title' | 'description' | 'status' | 'priority' | 'dueDate' | 'tags'
  >
>;

const COLUMN_OF: Readonly<Record<keyof TaskChanges, string>> = {
  categoryId: 'category_id',
  title: 'title',
  description: 'description',
  status: 'status',
  priority: 'priority',
  dueDate: 'due_date',
  tags: 'tags',
};
const PROPERTIES = Object.keys(COLUMN_OF) as (keyof TaskChanges)[];

/**
 * The properties `changes` sets (undefined is "leave as it is"; null is a value), in a fixed
 * order, and a tag naming that set: each set of columns is its own prepared statement.
 */
function present(changes: TaskChanges): { properties: (keyof TaskChanges)[]; tag: number } {
  const properties = PROPERTIES.filter((property) => changes[property] !== undefined);
  const tag = properties.reduce((bits, property) => bits | (1 << PROPERTIES.indexOf(property)), 0);
  return { properties, tag };
}

/**
 * The hot statements on `tasks`, as named prepared statements, with rows shaped as TaskEntity
 * as they come (TASK_COLUMNS). TypeORM's findOneBy and save build the query and hydrate the
 * entity anew on every call, which cost more CPU than the statements themselves (the benchmark's
 * profiles of the read and the writes). The read runs on TypeORM's own pool; the writes run on
 * the connection of the caller's transaction. Lists and filters stay on TypeORM's builder.
 */
@Injectable()
export class TasksRepository {
  private readonly pool: Pool;

  constructor(@InjectDataSource() dataSource: DataSource) {
    this.pool = (dataSource.driver as PostgresDriver).master as Pool;
  }

  async findOwned(id: string, userId: string): Promise<TaskEntity | undefined> {
    const { rows } = await this.pool.query<TaskEntity>({
      name: 'tasks_find_owned',
      text: `SELECT ${TASK_COLUMNS} FROM tasks t WHERE t.id = $1 AND t.user_id = $2`,
      values: [id, userId],
    });
    return rows[0];
  }

  /**
   * A new task of the owner's (the columns it does not set take the table's defaults) and the
   * outbox message announcing it, in one statement: atomic by itself, so without a transaction
   * it needs no BEGIN and COMMIT (one round trip, where an INSERT and addToOutbox in a
   * transaction take four); inside the caller's when `manager` is given. The message's payload
   * is `event` with the new task, as the API shows it, as its `data`.
   */
  async insertAnnounced(
    manager: EntityManager | undefined,
    userId: string,
    changes: TaskChanges,
    message: { queue: string; pattern: string; event: object },
  ): Promise<TaskEntity> {
    const { properties, tag } = present(changes);
    const columns = properties.map((property) => COLUMN_OF[property]);
    const last = columns.length + 1;
    const { rows } = await (manager ? connectionOf(manager) : this.pool).query<TaskEntity>({
      name: `tasks_insert_announced_${tag}`,
      text: `WITH t AS (
               INSERT INTO tasks AS t (user_id${columns.map((c) => `, ${c}`).join('')})
               VALUES ($1${columns.map((_, i) => `, $${i + 2}`).join('')})
               RETURNING ${TASK_COLUMNS}
             ), announced AS (
               INSERT INTO outbox (queue, pattern, payload)
               SELECT $${last + 1}, $${last + 2},
                      jsonb_set($${last + 3}::jsonb, '{data}', ${taskResourceJson('t')})
                 FROM t
             )
             SELECT * FROM t`,
      values: [
        userId,
        ...properties.map((property) => changes[property]),
        message.queue,
        message.pattern,
        JSON.stringify(message.event),
      ],
    });
    return rows[0];
  }

  /**
   * Changes the owner's task to its next version (the version up by one, updated_at the
   * statement's time) if it has one of `versions` (null: any), and adds the outbox messages
   * announcing it, in one statement: `task.updated`, then `task.completed` when it becomes done.
   * The row is locked first (`before`, FOR UPDATE): a writer that waited on another sees the
   * version and the status that one left, so of two writers holding the same entity tag the
   * second changes nothing, and of two making a task done only the first announces it done.
   * Undefined when nothing was changed: no such task of the owner's, or not at those versions.
   */
  async updateAnnounced(
    userId: string,
    id: string,
    changes: TaskChanges,
    versions: number[] | null,
    message: { queue: string; pattern: string; updated: object; completed: object },
  ): Promise<TaskEntity | undefined> {
    const { properties, tag } = present(changes);
    const first = 4;
    const assignments = properties.map((property, i) => `${COLUMN_OF[property]} = $${first + i}`);
    const next = first + properties.length;
    const { rows } = await this.pool.query<TaskEntity>({
      name: `tasks_update_announced_${tag}`,
      text: `WITH before AS (
               SELECT t.id, t.status, t.version FROM tasks t
                WHERE t.id = $1 AND t.user_id = $2
                  FOR UPDATE
             ), t AS (
               UPDATE tasks AS t SET ${assignments.map((a) => `${a}, `).join('')}
                      version = t.version + 1, updated_at = now()
                 FROM before
                WHERE t.id = before.id AND ($3::int[] IS NULL OR before.version = ANY($3::int[]))
               RETURNING ${TASK_COLUMNS}, before.status AS "previousStatus"
             ), announced AS (
               INSERT INTO outbox (queue, pattern, payload)
               SELECT $${next}, $${next + 1}, jsonb_set(e.event, '{data}', ${taskResourceJson('t')})
                 FROM t, (VALUES (1, $${next + 2}::jsonb), (2, $${next + 3}::jsonb)) AS e (n, event)
                WHERE e.n = 1 OR (t.status = 'done' AND t."previousStatus" <> 'done')
                ORDER BY e.n
             )
             SELECT * FROM t`, // the task, and previousStatus, which TaskDto.from leaves out
      values: [
        id,
        userId,
        versions,
        ...properties.map((property) => changes[property]),
        message.queue,
        message.pattern,
        JSON.stringify(message.updated),
        JSON.stringify(message.completed),
      ],
    });
    return rows[0];
  }

  /**
   * Deletes the owner's task if it has one of `versions` (null: any), and adds the outbox message
   * announcing it (`data` is `{ id }`), in one statement. False when nothing was deleted: no such
   * task of the owner's, or not at those versions.
   */
  async deleteAnnounced(
    userId: string,
    id: string,
    versions: number[] | null,
    message: { queue: string; pattern: string; event: object },
  ): Promise<boolean> {
    const { rows } = await this.pool.query<{ deleted: boolean }>({
      name: 'tasks_delete_announced',
      text: `WITH gone AS (
               DELETE FROM tasks t
                WHERE t.id = $1 AND t.user_id = $2
                  AND ($3::int[] IS NULL OR t.version = ANY($3::int[]))
               RETURNING t.id
             ), announced AS (
               INSERT INTO outbox (queue, pattern, payload)
               SELECT $4, $5, jsonb_set($6::jsonb, '{data}', jsonb_build_object('id', gone.id))
                 FROM gone
             )
             SELECT EXISTS (SELECT FROM gone) AS deleted`,
      values: [id, userId, versions, message.queue, message.pattern, JSON.stringify(message.event)],
    });
    return rows[0].deleted;
  }
}
