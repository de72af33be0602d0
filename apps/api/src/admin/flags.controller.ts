import { Scopes } from '@app/auth';
import { DegradationFlags } from '@app/resilience';
import { Body, Controller, Get, Put } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ProblemResponses } from '../common/problem-responses.decorator';
import { FlagsDto, UpdateFlagsDto } from './dto/flags.dto';

/** Degraded mode and feature flags (CONTRACT §8), shared by every instance through Redis. */
@ApiTags('admin')
@Scopes('admin')
@ProblemResponses(401, 403)
@Controller('admin/flags')
export class FlagsController {
  constructor(private readonly flags: DegradationFlags) {}

  @Get()
  @ApiOkResponse({ type: FlagsDto })
  get(): FlagsDto {
    return this.flags.view();
  }

  /** Changes only the fields sent; every instance applies it within about a second. */
  @Put()
  @ApiOkResponse({ type: FlagsDto })
  @ProblemResponses(400, 503)
  update(@Body() change: UpdateFlagsDto): Promise<FlagsDto> {
    return this.flags.update(change);
  }
}
