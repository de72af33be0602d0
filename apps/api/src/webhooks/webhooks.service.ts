import type { Principal } from '@app/auth';
import { AppConfig, InjectConfig } from '@app/config';
import { WebhookDeliveryEntity, WebhookEntity } from '@app/database';
import { ApiException, IfMatch, Keyset, notFound } from '@app/http';
import { WebhookSecrets, newWebhookSecret, targetProblem } from '@app/webhooks';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { checkUnversioned } from '../common/owned-rows';
import {
  IdempotencyRequest,
  IdempotencyService,
  IdempotentResult,
} from '../common/idempotency.service';
import {
  CreateWebhookDto,
  CreatedWebhookDto,
  DeliveryPageDto,
  DeliveryDto,
  ListWebhooksQueryDto,
  WebhookDto,
  WebhookPageDto,
} from './dto/webhook.dto';

const NEWEST_FIRST = '-createdAt';
const webhookKeyset = new Keyset<WebhookEntity>(
  { createdAt: { property: 'createdAt', column: 'w.created_at', sqlType: 'timestamptz' } },
  'w.id',
);
const deliveryKeyset = new Keyset<WebhookDeliveryEntity>(
  { createdAt: { property: 'createdAt', column: 'd.created_at', sqlType: 'timestamptz' } },
  'd.id',
);

/** The caller's webhook subscriptions and their deliveries (CONTRACT §5). */
@Injectable()
export class WebhooksService {
  private readonly secrets: WebhookSecrets;

  constructor(
    @InjectConfig() private readonly config: AppConfig,
    @InjectRepository(WebhookEntity) private readonly webhooks: Repository<WebhookEntity>,
    @InjectRepository(WebhookDeliveryEntity)
    private readonly deliveries: Repository<WebhookDeliveryEntity>,
    private readonly idempotency: IdempotencyService,
  ) {
    this.secrets = new WebhookSecrets(config.webhooks.secretsKey);
  }

  /**
   * A subscription and its signing secret, shown this once (stored encrypted). A replay of its
   * Idempotency-Key answers the subscription without the secret, as API keys do.
   */
  create(
    principal: Principal,
    dto: CreateWebhookDto,
    idempotency: IdempotencyRequest,
  ): Promise<IdempotentResult<CreatedWebhookDto>> {
    const problem = targetProblem(dto.url, this.config.webhooks.allowHosts);
    if (problem) {
      throw new ApiException('VALIDATION_FAILED', `url: ${problem}`, [
        { field: 'url', message: problem },
      ]);
    }
    return this.idempotency.run(
      principal.userId,
      idempotency,
      async (manager): Promise<CreatedWebhookDto> => {
        const secret = newWebhookSecret();
        const saved = await manager.save(
          manager.create(WebhookEntity, {
            userId: principal.userId,
            url: dto.url,
            events: dto.events,
            secret: this.secrets.encrypt(secret),
          }),
        );
        return { ...WebhookDto.from(saved), secret };
      },
      ({ secret: _shownOnce, ...described }) => described,
    );
  }

  async list(principal: Principal, query: ListWebhooksQueryDto): Promise<WebhookPageDto> {
    const qb = this.webhooks
      .createQueryBuilder('w')
      .where('w.user_id = :userId', { userId: principal.userId });
    const rows = await webhookKeyset.apply(qb, NEWEST_FIRST, query.cursor, query.limit).getMany();
    const page = webhookKeyset.page(rows, NEWEST_FIRST, query.limit);
    return { data: page.data.map((w) => WebhookDto.from(w)), nextCursor: page.nextCursor };
  }

  /** Deletes the subscription and its deliveries; deliveries still queued are then skipped. */
  async remove(principal: Principal, id: string, ifMatch: IfMatch): Promise<void> {
    await checkUnversioned(ifMatch, 'Webhook', () =>
      this.webhooks.existsBy({ id, userId: principal.userId }),
    );
    const result = await this.webhooks.delete({ id, userId: principal.userId });
    if (result.affected !== 1) throw notFound('Webhook');
  }

  /** The subscription's deliveries, newest first. */
  async deliveriesOf(
    principal: Principal,
    id: string,
    query: ListWebhooksQueryDto,
  ): Promise<DeliveryPageDto> {
    if (!(await this.webhooks.existsBy({ id, userId: principal.userId }))) {
      throw notFound('Webhook');
    }
    const qb = this.deliveries.createQueryBuilder('d').where('d.webhook_id = :id', { id });
    const rows = await deliveryKeyset.apply(qb, NEWEST_FIRST, query.cursor, query.limit).getMany();
    const page = deliveryKeyset.page(rows, NEWEST_FIRST, query.limit);
    return { data: page.data.map((d) => DeliveryDto.from(d)), nextCursor: page.nextCursor };
  }
}
