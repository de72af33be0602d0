import { CurrentPrincipal, Principal, Scopes } from '@app/auth';
import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  Patch,
  Post,
  Query,
  Res,
} from '@nestjs/common';
import { ApiAcceptedResponse, ApiNoContentResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
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
  DeliveryDto,
  DeliveryPageDto,
  ListWebhooksQueryDto,
  PingAcceptedDto,
  RotatedSecretDto,
  UpdateWebhookDto,
  WebhookDto,
  WebhookPageDto,
} from './dto/webhook.dto';
import { WebhooksService } from './webhooks.service';

const id = uuidParam('Webhook');
const delivery = uuidParam('Delivery');

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

  @Get(':id')
  @Scopes('webhooks:read')
  @ApiOkResponse({ type: WebhookDto })
  @ProblemResponses(404)
  get(
    @CurrentPrincipal() principal: Principal,
    @Param('id', id) webhookId: string,
  ): Promise<WebhookDto> {
    return this.webhooks.get(principal, webhookId);
  }

  /** Changes the URL, the events or `enabled`; the fields sent, at least one. */
  @Patch(':id')
  @Scopes('webhooks:write')
  @ApiOkResponse({ type: WebhookDto })
  @ProblemResponses(400, 404, 413, 415)
  @UnversionedIfMatch()
  update(
    @CurrentPrincipal() principal: Principal,
    @Param('id', id) webhookId: string,
    @Body() dto: UpdateWebhookDto,
    @IfMatchCondition() ifMatch: IfMatch,
  ): Promise<WebhookDto> {
    return this.webhooks.update(principal, webhookId, dto, ifMatch);
  }

  /** A new signing secret, shown once; the old one signs beside it for 24 h. */
  @Post(':id/rotate-secret')
  @HttpCode(200)
  @Scopes('webhooks:write')
  @ApiOkResponse({ type: RotatedSecretDto, description: '`secret` is shown this once.' })
  @ProblemResponses(404)
  rotateSecret(
    @CurrentPrincipal() principal: Principal,
    @Param('id', id) webhookId: string,
  ): Promise<RotatedSecretDto> {
    return this.webhooks.rotateSecret(principal, webhookId);
  }

  /** A `webhook.ping` event to the subscription, delivered like any other. */
  @Post(':id/ping')
  @HttpCode(202)
  @Scopes('webhooks:write')
  @ApiAcceptedResponse({ type: PingAcceptedDto, description: 'Queued: see its deliveries.' })
  @ProblemResponses(404)
  ping(
    @CurrentPrincipal() principal: Principal,
    @Param('id', id) webhookId: string,
  ): Promise<PingAcceptedDto> {
    return this.webhooks.ping(principal, webhookId);
  }

  /** A failed delivery sent again, from its first attempt. */
  @Post(':id/deliveries/:deliveryId/redeliver')
  @HttpCode(202)
  @Scopes('webhooks:write')
  @ApiAcceptedResponse({ type: DeliveryDto, description: 'Queued again: now pending.' })
  @ProblemResponses(404, 409)
  redeliver(
    @CurrentPrincipal() principal: Principal,
    @Param('id', id) webhookId: string,
    @Param('deliveryId', delivery) deliveryId: string,
  ): Promise<DeliveryDto> {
    return this.webhooks.redeliver(principal, webhookId, deliveryId);
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
