import { CurrentPrincipal, Principal } from '@app/auth';
import { EtagInterceptor, parseIfMatch } from '@app/http';
import {
  Body,
  Controller,
  Delete,
  Get,
  Headers,
  HttpCode,
  Param,
  Patch,
  Post,
  Query,
  Req,
  Res,
  UseInterceptors,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiHeader,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { created } from '../common/created';
import {
  IdempotencyKeyHeader,
  IfMatchHeader,
  IfNoneMatchHeader,
} from '../common/headers.decorator';
import { ProblemResponses } from '../common/problem-responses.decorator';
import { uuidParam } from '../common/uuid-param.pipe';
import { TasksService } from './tasks.service';
import {
  TaskDto,
  TaskPageDto,
  CreateTaskDto,
  ListTasksQueryDto,
  UpdateTaskDto,
} from './dto/task.dto';

@ApiTags('tasks')
@ApiBearerAuth()
@ApiHeader({ name: 'X-Request-ID', required: false, description: 'Echoed back; else one is made.' })
@ProblemResponses(401)
@Controller('tasks')
@UseInterceptors(EtagInterceptor)
export class TasksController {
  constructor(private readonly tasks: TasksService) {}

  @Post()
  @IdempotencyKeyHeader()
  @ApiCreatedResponse({ type: TaskDto })
  @ProblemResponses(400, 409, 413, 415, 422)
  async create(
    @CurrentPrincipal() principal: Principal,
    @Body() dto: CreateTaskDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TaskDto> {
    const result = await this.tasks.create(principal, dto, idempotencyKey, request.body);
    return created(reply, '/v1/tasks', result);
  }

  @Get()
  @ApiOkResponse({ type: TaskPageDto })
  @ProblemResponses(400)
  list(
    @CurrentPrincipal() principal: Principal,
    @Query() query: ListTasksQueryDto,
  ): Promise<TaskPageDto> {
    return this.tasks.list(principal, query);
  }

  @Get(':id')
  @IfNoneMatchHeader()
  @ApiOkResponse({ type: TaskDto, description: 'With a strong ETag.' })
  @ProblemResponses(304, 404)
  get(
    @CurrentPrincipal() principal: Principal,
    @Param('id', uuidParam('Task')) id: string,
  ): Promise<TaskDto> {
    return this.tasks.get(principal, id);
  }

  @Patch(':id')
  @IfMatchHeader()
  @ApiOkResponse({ type: TaskDto })
  @ProblemResponses(400, 404, 412)
  update(
    @CurrentPrincipal() principal: Principal,
    @Param('id', uuidParam('Task')) id: string,
    @Body() dto: UpdateTaskDto,
    @Headers('if-match') ifMatch: string | undefined,
  ): Promise<TaskDto> {
    return this.tasks.update(principal, id, dto, parseIfMatch(ifMatch));
  }

  @Delete(':id')
  @HttpCode(204)
  @IfMatchHeader()
  @ApiNoContentResponse({ description: 'Deleted.' })
  @ProblemResponses(404, 412)
  remove(
    @CurrentPrincipal() principal: Principal,
    @Param('id', uuidParam('Task')) id: string,
    @Headers('if-match') ifMatch: string | undefined,
  ): Promise<void> {
    return this.tasks.remove(principal, id, parseIfMatch(ifMatch));
  }
}
