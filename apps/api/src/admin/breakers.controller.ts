import { Scopes } from '@app/auth';
import { Breakers } from '@app/resilience';
import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ProblemResponses } from '../common/problem-responses.decorator';
import { BreakerListDto } from './dto/breaker.dto';

/** This instance's circuit breakers (CONTRACT §8): each process has its own. */
@ApiTags('admin')
@Scopes('admin')
@ProblemResponses(401, 403)
@Controller('admin/breakers')
export class BreakersController {
  constructor(private readonly breakers: Breakers) {}

  @Get()
  @ApiOkResponse({ type: BreakerListDto, description: "This instance's breakers and their state." })
  list(): BreakerListDto {
    return { data: this.breakers.list() };
  }
}
