import { CurrentPrincipal, Principal, Scopes } from '@app/auth';
import { Controller, Get, Param, StreamableFile } from '@nestjs/common';
import { ApiOkResponse, ApiProduces, ApiTags } from '@nestjs/swagger';
import { ProblemResponses } from '../common/problem-responses.decorator';
import { ReadRoute } from '../common/resource-routes.decorator';
import { uuidParam } from '../common/uuid-param.pipe';
import { JobDto } from './dto/job.dto';
import { JobsService } from './jobs.service';

const id = uuidParam('Job');

/**
 * The caller's background jobs and their results. Reading them needs `tasks:read`: today every
 * job is a task export, and its file is the caller's tasks.
 */
@ApiTags('jobs')
@ProblemResponses(401, 403)
@Controller('jobs')
export class JobsController {
  constructor(private readonly jobs: JobsService) {}

  @Scopes('tasks:read')
  @ReadRoute(JobDto)
  get(@CurrentPrincipal() principal: Principal, @Param('id', id) jobId: string): Promise<JobDto> {
    return this.jobs.get(principal, jobId);
  }

  @Get(':id/result')
  @Scopes('tasks:read')
  @ApiProduces('text/csv', 'application/x-ndjson')
  @ApiOkResponse({
    description: 'The file, once the job has succeeded: CSV or NDJSON, as the export asked.',
    content: {
      'text/csv': { schema: { type: 'string', format: 'binary' } },
      'application/x-ndjson': { schema: { type: 'string', format: 'binary' } },
    },
    headers: {
      'Content-Disposition': {
        description: 'attachment, with the file name.',
        schema: { type: 'string' },
      },
    },
  })
  @ProblemResponses(404, 409)
  result(
    @CurrentPrincipal() principal: Principal,
    @Param('id', id) jobId: string,
  ): Promise<StreamableFile> {
    return this.jobs.result(principal, jobId);
  }
}
