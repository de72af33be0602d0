import type { Principal } from '@app/auth';
import { DegradationFlags } from '@app/resilience';
import { TASK_PRIORITIES, TaskEntity, filterTasks } from '@app/database';
import { ApiException, IfMatch, Keyset, notFound } from '@app/http';
import { QUEUES, addToOutbox } from '@app/messaging';
import { TASK_EVENT, type TaskEvent, type WebhookEvent } from '@app/webhooks';
import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { DataSource, EntityManager, Repository } from 'typeorm';
import {
  IdempotencyRequest,
  IdempotencyService,
  IdempotentResult,
} from '../common/idempotency.service';
import {
  FOREIGN_KEY_VIOLATION,
  checkIfMatch,
  requireChanges,
  sqlState,
} from '../common/owned-rows';
import {
  CreateTaskDto,
  ListTasksQueryDto,
  TaskDto,
  TaskPageDto,
  UpdateTaskDto,
} from './dto/task.dto';
import { type TaskChanges, TasksRepository } from './tasks.repository';

const keyset = new Keyset<TaskEntity>(
  {
    createdAt: { property: 'createdAt', column: 't.created_at', sqlType: 'timestamptz' },
    dueDate: { property: 'dueDate', column: 't.due_date', sqlType: 'timestamptz', nullable: true },
    priority: {
      property: 'priority',
      column: 't.priority',
      sqlType: 'task_priority',
      values: TASK_PRIORITIES,
    },
    title: { property: 'title', column: 't.title', sqlType: 'text' },
  },
  't.id',
);

/** DTO fields to what a write sets; dates parsed, absent fields left out. */
function toChanges(dto: UpdateTaskDto): TaskChanges {
  const { dueDate, ...rest } = dto;
  const changes: TaskChanges = { ...rest };
  if (dueDate !== undefined) changes.dueDate = dueDate === null ? null : new Date(dueDate);
  return changes;
}

/** The category must be one of the caller's: the composite foreign key says so. */
async function ownCategory<T>(write: Promise<T>): Promise<T> {
  try {
    return await write;
  } catch (error) {
    if (sqlState(error) === FOREIGN_KEY_VIOLATION) {
      throw new ApiException('VALIDATION_FAILED', 'categoryId: no such category', [
        { field: 'categoryId', message: 'no such category' },
      ]);
    }
    throw error;
  }
}

/**
 * A task change, written to the outbox in the change's own transaction (CONTRACT §5): the worker
 * fans it out to the owner's webhooks. It commits or rolls back with the change, and a write
 * never waits on RabbitMQ.
 */
function announce(
  manager: EntityManager,
  userId: string,
  type: WebhookEvent,
  data: unknown,
): Promise<string> {
  return addToOutbox(manager, QUEUES.taskEvents, TASK_EVENT, { ...eventOf(userId, type), data });
}

/** A task event but for its data. */
function eventOf(userId: string, type: WebhookEvent): Omit<TaskEvent, 'data'> {
  return { id: randomUUID(), type, createdAt: new Date().toISOString(), userId };
}

@Injectable()
export class TasksService {
  constructor(
    @InjectRepository(TaskEntity) private readonly tasks: Repository<TaskEntity>,
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly idempotency: IdempotencyService,
    private readonly repository: TasksRepository,
    private readonly flags: DegradationFlags,
  ) {}

  create(
    principal: Principal,
    dto: CreateTaskDto,
    idempotency: IdempotencyRequest,
  ): Promise<IdempotentResult<TaskDto>> {
    // The task and its task.created event in one statement: no transaction needed without a key.
    return this.idempotency.runStatement(principal.userId, idempotency, async (manager) => {
      const inserted = this.repository.insertAnnounced(manager, principal.userId, toChanges(dto), {
        queue: QUEUES.taskEvents,
        pattern: TASK_EVENT,
        event: eventOf(principal.userId, 'task.created'),
      });
      return TaskDto.from(await ownCategory(inserted));
    });
  }

  async list(principal: Principal, query: ListTasksQueryDto): Promise<TaskPageDto> {
    // Search is the expensive read: degraded mode turns it away first.
    if (query.q) this.flags.ensure('search');
    const qb = filterTasks(this.tasks.createQueryBuilder('t'), principal.userId, query);
    const rows = await keyset.apply(qb, query.sort, query.cursor, query.limit).getMany();
    const page = keyset.page(rows, query.sort, query.limit);
    return { data: page.data.map((task) => TaskDto.from(task)), nextCursor: page.nextCursor };
  }

  async get(principal: Principal, id: string): Promise<TaskDto> {
    const task = await this.repository.findOwned(id, principal.userId);
    if (!task) throw notFound('Task');
    return TaskDto.from(task);
  }

  update(principal: Principal, id: string, dto: UpdateTaskDto, ifMatch: IfMatch): Promise<TaskDto> {
    return this.dataSource.transaction(async (manager) => {
      const before = await this.lockForWrite(manager, principal, id, ifMatch);
      const changes = toChanges(requireChanges(dto));
      const updated = TaskDto.from(await ownCategory(this.repository.update(manager, id, changes)));
      await announce(manager, principal.userId, 'task.updated', updated);
      if (updated.status === 'done' && before.status !== 'done') {
        await announce(manager, principal.userId, 'task.completed', updated);
      }
      return updated;
    });
  }

  remove(principal: Principal, id: string, ifMatch: IfMatch): Promise<void> {
    return this.dataSource.transaction(async (manager) => {
      await this.lockForWrite(manager, principal, id, ifMatch);
      await this.repository.delete(manager, id);
      await announce(manager, principal.userId, 'task.deleted', { id });
    });
  }

  /** The caller's task, locked for this transaction, after the If-Match check. */
  private async lockForWrite(
    manager: EntityManager,
    principal: Principal,
    id: string,
    ifMatch: IfMatch,
  ): Promise<TaskEntity> {
    const task = await this.repository.lockOwned(manager, id, principal.userId);
    return checkIfMatch(task, ifMatch, 'Task');
  }
}
