import { CurrentPrincipal, Principal, Scopes } from '@app/auth';
import { Body, Controller, HttpCode, Post, Res } from '@nestjs/common';
import { ApiAcceptedResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import type { IdempotencyRequest } from '../common/idempotency.service';
import { ProblemResponses } from '../common/problem-responses.decorator';
import { located } from '../common/created';
import { Idempotency, IdempotencyKeyHeader } from '../common/resource-routes.decorator';
import { ExportAcceptedDto, ExportTasksDto } from './dto/job.dto';
import { JobsService } from './jobs.service';

@ApiTags('tasks')
@ProblemResponses(401, 403)
@Controller('tasks/exports')
export class ExportsController {
  constructor(private readonly jobs: JobsService) {}

  /** An export of the caller's tasks, made in the background: poll the job it names. */
  @Post()
  @HttpCode(202)
  @Scopes('exports:write', 'tasks:read')
  @IdempotencyKeyHeader()
  @ApiAcceptedResponse({ type: ExportAcceptedDto, description: 'Queued; Location names the job.' })
  @ProblemResponses(400, 413, 415, 422, 503)
  async create(
    @CurrentPrincipal() principal: Principal,
    @Body() dto: ExportTasksDto,
    @Idempotency() idempotency: IdempotencyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ExportAcceptedDto> {
    const result = await this.jobs.exportTasks(principal, dto, idempotency);
    return located(reply, result, `/v1/jobs/${result.body.jobId}`);
  }
}
