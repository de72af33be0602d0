import { CurrentPrincipal, Principal, Scopes } from '@app/auth';
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
import {
  CreateWebhookDto,
  CreatedWebhookDto,
  DeliveryPageDto,
  ListWebhooksQueryDto,
  WebhookPageDto,
} from './dto/webhook.dto';
import { WebhooksService } from './webhooks.service';

const id = uuidParam('Webhook');

/** The caller's webhook subscriptions (CONTRACT §5). */
@ApiTags('webhooks')
@ProblemResponses(401, 403)
@Controller('webhooks')
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  @CreateWithSecretRoute(CreatedWebhookDto, 'secret')
  @Scopes('webhooks:write')
  async create(
    @CurrentPrincipal() principal: Principal,
    @Body() dto: CreateWebhookDto,
    @Idempotency() idempotency: IdempotencyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<CreatedWebhookDto> {
    return created(reply, await this.webhooks.create(principal, dto, idempotency));
  }

  @Get()
  @Scopes('webhooks:read')
  @ApiOkResponse({ type: WebhookPageDto, description: 'Newest first.' })
  @ProblemResponses(400)
  list(
    @CurrentPrincipal() principal: Principal,
    @Query() query: ListWebhooksQueryDto,
  ): Promise<WebhookPageDto> {
    return this.webhooks.list(principal, query);
  }

  @Delete(':id')
  @Scopes('webhooks:write')
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'Deleted, with its deliveries.' })
  @ProblemResponses(404)
  @UnversionedIfMatch()
  remove(
    @CurrentPrincipal() principal: Principal,
    @Param('id', id) webhookId: string,
    @IfMatchCondition() ifMatch: IfMatch,
  ): Promise<void> {
    return this.webhooks.remove(principal, webhookId, ifMatch);
  }

  @Get(':id/deliveries')
  @Scopes('webhooks:read')
  @ApiOkResponse({ type: DeliveryPageDto, description: 'Newest first, failed ones included.' })
  @ProblemResponses(400, 404)
  deliveries(
    @CurrentPrincipal() principal: Principal,
    @Param('id', id) webhookId: string,
    @Query() query: ListWebhooksQueryDto,
  ): Promise<DeliveryPageDto> {
    return this.webhooks.deliveriesOf(principal, webhookId, query);
  }
}
