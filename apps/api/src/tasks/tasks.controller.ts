import { CurrentPrincipal, Principal, Scopes } from '@app/auth';
import { Cached, Invalidates } from '@app/cache';
import { IfMatch } from '@app/http';
import { Body, Controller, Param, Query, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { created } from '../common/created';
import type { IdempotencyRequest } from '../common/idempotency.service';
import { ProblemResponses } from '../common/problem-responses.decorator';
import {
  CreateRoute,
  DeleteRoute,
  IfMatchCondition,
  Idempotency,
  ListRoute,
  ReadRoute,
  UpdateRoute,
} from '../common/resource-routes.decorator';
import { uuidParam } from '../common/uuid-param.pipe';
import {
  CreateTaskDto,
  TaskDto,
  TaskPageDto,
  ListTasksQueryDto,
  UpdateTaskDto,
} from './dto/task.dto';
import { TasksService } from './tasks.service';

const id = uuidParam('Task');

@ApiTags('tasks')
@ProblemResponses(401, 403)
@Controller('tasks')
export class TasksController {
  constructor(private readonly tasks: TasksService) {}

  @Scopes('tasks:write')
  @Invalidates('tasks')
  @CreateRoute(TaskDto)
  async create(
    @CurrentPrincipal() principal: Principal,
    @Body() dto: CreateTaskDto,
    @Idempotency() idempotency: IdempotencyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TaskDto> {
    return created(reply, await this.tasks.create(principal, dto, idempotency));
  }

  @Scopes('tasks:read')
  @Cached('tasks')
  @ListRoute(TaskPageDto)
  list(
    @CurrentPrincipal() principal: Principal,
    @Query() query: ListTasksQueryDto,
  ): Promise<TaskPageDto> {
    return this.tasks.list(principal, query);
  }

  @Scopes('tasks:read')
  @Cached('tasks')
  @ReadRoute(TaskDto)
  get(@CurrentPrincipal() principal: Principal, @Param('id', id) taskId: string): Promise<TaskDto> {
    return this.tasks.get(principal, taskId);
  }

  @Scopes('tasks:write')
  @Invalidates('tasks')
  @UpdateRoute(TaskDto)
  update(
    @CurrentPrincipal() principal: Principal,
    @Param('id', id) taskId: string,
    @Body() dto: UpdateTaskDto,
    @IfMatchCondition() ifMatch: IfMatch,
  ): Promise<TaskDto> {
    return this.tasks.update(principal, taskId, dto, ifMatch);
  }

  @Scopes('tasks:write')
  @Invalidates('tasks')
  @DeleteRoute()
  remove(
    @CurrentPrincipal() principal: Principal,
    @Param('id', id) taskId: string,
    @IfMatchCondition() ifMatch: IfMatch,
  ): Promise<void> {
    return this.tasks.remove(principal, taskId, ifMatch);
  }
}
