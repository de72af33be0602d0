import { Scopes } from '@app/auth';
import type { IfMatch } from '@app/http';
import { DegradationFlags } from '@app/resilience';
import { Body, Controller, Get, Put } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { checkUnversioned } from '../common/owned-rows';
import { ProblemResponses } from '../common/problem-responses.decorator';
import { IfMatchCondition, UnversionedIfMatch } from '../common/resource-routes.decorator';
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
  @UnversionedIfMatch()
  async update(
    @Body() change: UpdateFlagsDto,
    @IfMatchCondition() ifMatch: IfMatch,
  ): Promise<FlagsDto> {
    // One set of flags that always exists.
    await checkUnversioned(ifMatch, 'Flags', () => Promise.resolve(true));
    return this.flags.update(change);
  }
}
