import { Scopes } from '@app/auth';
import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ProblemResponses } from '../common/problem-responses.decorator';
import { UsageDto, UsageQueryDto } from './dto/usage.dto';
import { UsageService } from './usage.service';

/** Request counts, error rates and latency from the request log (CONTRACT §8). */
@ApiTags('admin')
@Scopes('admin')
@ProblemResponses(401, 403)
@Controller('admin/usage')
export class UsageController {
  constructor(private readonly usage: UsageService) {}

  @Get()
  @ApiOkResponse({ type: UsageDto, description: 'Usage per minute or hour, from the request log.' })
  @ProblemResponses(400)
  get(@Query() query: UsageQueryDto): Promise<UsageDto> {
    return this.usage.usage(query);
  }
}
