import { Scopes } from '@app/auth';
import { ApiException, IfMatch, notFound } from '@app/http';
import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  PipeTransform,
  Put,
  Query,
  Res,
} from '@nestjs/common';
import {
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ProblemResponses } from '../common/problem-responses.decorator';
import { IfMatchCondition, UnversionedIfMatch } from '../common/resource-routes.decorator';
import {
  ListRateLimitsQueryDto,
  MAX_IDENTIFIER_LENGTH,
  PutRateLimitDto,
  RateLimitDto,
  RateLimitPageDto,
  RATE_LIMIT_RESOURCE as RESOURCE,
  isRateLimitIdentifier,
} from './dto/rate-limit.dto';
import { RateLimitsService } from './rate-limits.service';

/**
 * The path's identifier (Fastify has percent-decoded it: `ip%3A10.0.0.1` is `ip:10.0.0.1`).
 * A PUT names what it creates, so a malformed one is a 400; for a read or a delete it names no
 * resource, a 404 like a malformed id elsewhere. Checked before any query either way: a NUL
 * would fail in Postgres.
 */
class IdentifierPipe implements PipeTransform<string, string> {
  constructor(private readonly creates: boolean) {}

  transform(value: string): string {
    if (isRateLimitIdentifier(value)) return value;
    if (!this.creates) throw notFound(RESOURCE);
    const message = `must be key:, user: or ip: and the client's id, at most ${MAX_IDENTIFIER_LENGTH} characters`;
    throw new ApiException('VALIDATION_FAILED', `identifier: ${message}`, [
      { field: 'identifier', message },
    ]);
  }
}

const creating = new IdentifierPipe(true);
const existing = new IdentifierPipe(false);

const IdentifierDoc = ApiParam({
  name: 'identifier',
  example: 'ip:203.0.113.7',
  description: '`key:<apiKeyId>`, `user:<userId>` or `ip:<address>`; percent-encoding is fine.',
});

/**
 * Per-client rate limits, for administrators. A change applies on this instance from the next
 * request and on every other within a second; with rate limiting off it is stored and applies
 * once limiting is on.
 */
@ApiTags('admin')
@Scopes('admin')
@ProblemResponses(401, 403)
@Controller('admin/rate-limits')
export class RateLimitsController {
  constructor(private readonly rateLimits: RateLimitsService) {}

  @Get()
  @ApiOkResponse({ type: RateLimitPageDto })
  @ProblemResponses(400)
  list(@Query() query: ListRateLimitsQueryDto): Promise<RateLimitPageDto> {
    return this.rateLimits.list(query);
  }

  @Get(':identifier')
  @IdentifierDoc
  @ApiOkResponse({ type: RateLimitDto, description: 'Expired overrides too, until deleted.' })
  @ProblemResponses(404)
  get(@Param('identifier', existing) identifier: string): Promise<RateLimitDto> {
    return this.rateLimits.get(identifier);
  }

  @Put(':identifier')
  @IdentifierDoc
  @ApiCreatedResponse({ type: RateLimitDto, description: 'Created; Location names it.' })
  @ApiOkResponse({ type: RateLimitDto, description: 'Replaced.' })
  @ProblemResponses(400, 413, 415)
  @UnversionedIfMatch()
  async put(
    @Param('identifier', creating) identifier: string,
    @Body() dto: PutRateLimitDto,
    @IfMatchCondition() ifMatch: IfMatch,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<RateLimitDto> {
    const { created, body } = await this.rateLimits.put(identifier, dto, ifMatch);
    if (created) {
      // `:` may stay as it is in a path; everything else that needs it is encoded.
      const path = encodeURIComponent(identifier).replace(/%3A/g, ':');
      reply.code(201).header('location', `/v1/admin/rate-limits/${path}`);
    }
    return body;
  }

  @Delete(':identifier')
  @IdentifierDoc
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'Removed: the tier limit applies again.' })
  @ProblemResponses(404)
  @UnversionedIfMatch()
  remove(
    @Param('identifier', existing) identifier: string,
    @IfMatchCondition() ifMatch: IfMatch,
  ): Promise<void> {
    return this.rateLimits.remove(identifier, ifMatch);
  }
}
