import { CurrentPrincipal, NoApiKeys, Principal, Scopes } from '@app/auth';
import { Body, Controller, Delete, Get, HttpCode, Param, Query, Res } from '@nestjs/common';
import { ApiNoContentResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { IfMatch } from '@app/http';
import type { FastifyReply } from 'fastify';
import { created } from '../common/created';
import type { IdempotencyRequest } from '../common/idempotency.service';
import { ProblemResponses } from '../common/problem-responses.decorator';
import {
  CreateWithSecretRoute,
  Idempotency,
  IfMatchCondition,
  UnversionedIfMatch,
} from '../common/resource-routes.decorator';
import { uuidParam } from '../common/uuid-param.pipe';
import { ApiKeysService } from './api-keys.service';
import {
  ApiKeyDto,
  ApiKeyPageDto,
  CreateApiKeyDto,
  CreatedApiKeyDto,
  ListApiKeysQueryDto,
} from './dto/api-key.dto';

const id = uuidParam('API key');

/** The caller's API keys. Signed-in users only: a key cannot manage keys. */
@ApiTags('api-keys')
@Scopes()
@NoApiKeys()
@ProblemResponses(401, 403)
@Controller('api-keys')
export class ApiKeysController {
  constructor(private readonly apiKeys: ApiKeysService) {}

  @CreateWithSecretRoute(CreatedApiKeyDto, 'key')
  async create(
    @CurrentPrincipal() principal: Principal,
    @Body() dto: CreateApiKeyDto,
    @Idempotency() idempotency: IdempotencyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<CreatedApiKeyDto> {
    return created(reply, await this.apiKeys.create(principal, dto, idempotency));
  }

  @Get()
  @ApiOkResponse({ type: ApiKeyPageDto, description: 'Keys not revoked, newest first.' })
  @ProblemResponses(400)
  list(
    @CurrentPrincipal() principal: Principal,
    @Query() query: ListApiKeysQueryDto,
  ): Promise<ApiKeyPageDto> {
    return this.apiKeys.list(principal, query);
  }

  @Get(':id')
  @ApiOkResponse({ type: ApiKeyDto })
  @ProblemResponses(404)
  get(
    @CurrentPrincipal() principal: Principal,
    @Param('id', id) keyId: string,
  ): Promise<ApiKeyDto> {
    return this.apiKeys.get(principal, keyId);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'Revoked, on every instance within a second.' })
  @ProblemResponses(404)
  @UnversionedIfMatch()
  revoke(
    @CurrentPrincipal() principal: Principal,
    @Param('id', id) keyId: string,
    @IfMatchCondition() ifMatch: IfMatch,
  ): Promise<void> {
    return this.apiKeys.revoke(principal, keyId, ifMatch);
  }
}
