import type { Principal } from '@app/auth';
import { AppConfig, InjectConfig } from '@app/config';
import { WebhookDeliveryEntity, WebhookEntity } from '@app/database';
import { ApiException, IfMatch, Keyset, notFound } from '@app/http';
import { QUEUES, addToOutbox } from '@app/messaging';
import {
  PING_EVENT,
  SECRET_OVERLAP_HOURS,
  WEBHOOK_DELIVERY,
  WebhookSecrets,
  newWebhookSecret,
  targetProblem,
  type WebhookDeliveryJob,
} from '@app/webhooks';
import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { checkUnversioned, requireChanges } from '../common/owned-rows';
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
  PingAcceptedDto,
  RotatedSecretDto,
  UpdateWebhookDto,
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
    this.checkTarget(dto.url);
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

  private checkTarget(url: string): void {
    const problem = targetProblem(url, this.config.webhooks.allowHosts);
    if (problem) {
      throw new ApiException('VALIDATION_FAILED', `url: ${problem}`, [
        { field: 'url', message: problem },
      ]);
    }
  }

  async list(principal: Principal, query: ListWebhooksQueryDto): Promise<WebhookPageDto> {
    const qb = this.webhooks
      .createQueryBuilder('w')
      .where('w.user_id = :userId', { userId: principal.userId });
    const rows = await webhookKeyset.apply(qb, NEWEST_FIRST, query.cursor, query.limit).getMany();
    const page = webhookKeyset.page(rows, NEWEST_FIRST, query.limit);
    return { data: page.data.map((w) => WebhookDto.from(w)), nextCursor: page.nextCursor };
  }

  /** One of the caller's subscriptions (another user's is 404). */
  async get(principal: Principal, id: string): Promise<WebhookDto> {
    const webhook = await this.webhooks.findOneBy({ id, userId: principal.userId });
    if (!webhook) throw notFound('Webhook');
    return WebhookDto.from(webhook);
  }

  /** Changes the fields sent: the URL (checked as at creation), the events, enabled. */
  async update(
    principal: Principal,
    id: string,
    dto: UpdateWebhookDto,
    ifMatch: IfMatch,
  ): Promise<WebhookDto> {
    requireChanges(dto);
    if (dto.url !== undefined) this.checkTarget(dto.url);
    await checkUnversioned(ifMatch, 'Webhook', () =>
      this.webhooks.existsBy({ id, userId: principal.userId }),
    );
    const change = Object.fromEntries(
      Object.entries(dto).filter(([, value]) => value !== undefined),
    ) as Partial<WebhookEntity>;
    const result = await this.webhooks.update({ id, userId: principal.userId }, change);
    if (result.affected !== 1) throw notFound('Webhook');
    return this.get(principal, id);
  }

  /**
   * A new signing secret, shown this once. The one it replaces keeps signing beside it for
   * SECRET_OVERLAP_HOURS (every delivery carries both signatures), so receivers can move to the
   * new one without missing a delivery; a secret rotated out before that is dropped at once.
   */
  async rotateSecret(principal: Principal, id: string): Promise<RotatedSecretDto> {
    const secret = newWebhookSecret();
    const [rows] = await this.webhooks.query<[WebhookEntity[], number]>(
      `UPDATE webhooks SET previous_secret = secret, secret = $3,
              previous_secret_expires_at = now() + make_interval(hours => $4)
        WHERE id = $1 AND user_id = $2
        RETURNING id`,
      [id, principal.userId, this.secrets.encrypt(secret), SECRET_OVERLAP_HOURS],
    );
    if (rows.length !== 1) throw notFound('Webhook');
    return { ...(await this.get(principal, id)), secret };
  }

  /**
   * A `webhook.ping` delivery to the subscription, through the same path as any event (the
   * outbox, RabbitMQ, the worker's sender: signed, retried, listed in its deliveries), whether or
   * not it is enabled: a way to test a receiver before turning it on.
   */
  async ping(principal: Principal, id: string): Promise<PingAcceptedDto> {
    return this.webhooks.manager.transaction(async (manager) => {
      const eventId = randomUUID();
      const payload = {
        id: eventId,
        type: PING_EVENT,
        createdAt: new Date().toISOString(),
        data: { webhookId: id },
      };
      const [made] = await manager.query<{ id: string }[]>(
        `INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, payload)
         SELECT id, $3, $4, $5 FROM webhooks WHERE id = $1 AND user_id = $2
         RETURNING id`,
        [id, principal.userId, eventId, PING_EVENT, JSON.stringify(payload)],
      );
      if (!made) throw notFound('Webhook');
      await addToOutbox(manager, QUEUES.webhookDeliveries, WEBHOOK_DELIVERY, {
        deliveryId: made.id,
      } satisfies WebhookDeliveryJob);
      return { deliveryId: made.id };
    });
  }

  /**
   * Sends a failed (dead-lettered) delivery again, from its first attempt: the same body and
   * `Webhook-Id`, so a receiver that did get it after all can tell. Only a failed one: a pending
   * one is still being tried, a succeeded one arrived (409 DELIVERY_NOT_FAILED).
   */
  async redeliver(principal: Principal, id: string, deliveryId: string): Promise<DeliveryDto> {
    return this.webhooks.manager.transaction(async (manager) => {
      const [found] = await manager.query<{ status: string }[]>(
        `SELECT d.status FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
          WHERE d.id = $1 AND d.webhook_id = $2 AND w.user_id = $3
          FOR UPDATE OF d`,
        [deliveryId, id, principal.userId],
      );
      if (!found) throw notFound('Delivery');
      if (found.status !== 'failed') {
        throw new ApiException(
          'DELIVERY_NOT_FAILED',
          `This delivery is ${found.status}: only a failed one is sent again.`,
        );
      }
      await manager.query(
        `UPDATE webhook_deliveries SET status = 'pending', attempts = 0, last_status_code = NULL,
                last_error = NULL, updated_at = now()
          WHERE id = $1`,
        [deliveryId],
      );
      await addToOutbox(manager, QUEUES.webhookDeliveries, WEBHOOK_DELIVERY, {
        deliveryId,
      } satisfies WebhookDeliveryJob);
      const delivery = await manager.findOneByOrFail(WebhookDeliveryEntity, { id: deliveryId });
      return DeliveryDto.from(delivery);
    });
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
