import type { Principal } from '@app/auth';
import { DegradationFlags } from '@app/resilience';
import { TASK_PRIORITIES, TaskEntity, filterTasks } from '@app/database';
import { ApiException, IfMatch, Keyset, notFound } from '@app/http';
import { QUEUES } from '@app/messaging';
import { TASK_EVENT, type TaskEvent, type WebhookEvent } from '@app/webhooks';
import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import {
  IdempotencyRequest,
  IdempotencyService,
  IdempotentResult,
} from '../common/idempotency.service';
import {
  FOREIGN_KEY_VIOLATION,
  acceptedVersions,
  checkIfMatch,
  preconditionFailed,
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
 * A task event but for its data, which the statement that writes the change adds (the
 * repository's ...Announced methods): the event is in the outbox if and only if the change is
 * (CONTRACT §5), the worker fans it out to the owner's webhooks, and a write never waits on
 * RabbitMQ.
 */
function eventOf(userId: string, type: WebhookEvent): Omit<TaskEvent, 'data'> {
  return { id: randomUUID(), type, createdAt: new Date().toISOString(), userId };
}

@Injectable()
export class TasksService {
  constructor(
    @InjectRepository(TaskEntity) private readonly tasks: Repository<TaskEntity>,
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

  /** One statement: the task changed if If-Match holds, and its events (updateAnnounced). */
  async update(
    principal: Principal,
    id: string,
    dto: UpdateTaskDto,
    ifMatch: IfMatch,
  ): Promise<TaskDto> {
    const changes = toChanges(requireChanges(dto));
    const updated = await ownCategory(
      this.repository.updateAnnounced(principal.userId, id, changes, acceptedVersions(ifMatch), {
        queue: QUEUES.taskEvents,
        pattern: TASK_EVENT,
        updated: eventOf(principal.userId, 'task.updated'),
        completed: eventOf(principal.userId, 'task.completed'),
      }),
    );
    if (!updated) return this.refuse(principal, id, ifMatch);
    return TaskDto.from(updated);
  }

  /** One statement: the task deleted if If-Match holds, and its event (deleteAnnounced). */
  async remove(principal: Principal, id: string, ifMatch: IfMatch): Promise<void> {
    const deleted = await this.repository.deleteAnnounced(
      principal.userId,
      id,
      acceptedVersions(ifMatch),
      {
        queue: QUEUES.taskEvents,
        pattern: TASK_EVENT,
        event: eventOf(principal.userId, 'task.deleted'),
      },
    );
    if (!deleted) await this.refuse(principal, id, ifMatch);
  }

  /**
   * Why a write changed nothing: 404 when the caller has no such task, else 412. Also 412 when
   * If-Match holds now: then it did not when the write ran, and the task changed in between.
   */
  private async refuse(principal: Principal, id: string, ifMatch: IfMatch): Promise<never> {
    checkIfMatch(await this.repository.findOwned(id, principal.userId), ifMatch, 'Task');
    throw preconditionFailed('Task');
  }
}
