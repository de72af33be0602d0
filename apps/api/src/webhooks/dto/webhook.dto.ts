import {
  DELIVERY_STATUSES,
  DeliveryStatus,
  WebhookDeliveryEntity,
  WebhookEntity,
} from '@app/database';
import { PageQueryDto } from '@app/http';
import { DELIVERY_EVENT_TYPES, WEBHOOK_EVENTS, WebhookEvent } from '@app/webhooks';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  ArrayMinSize,
  ArrayUnique,
  IsArray,
  IsBoolean,
  IsIn,
  IsString,
  MaxLength,
} from 'class-validator';
import { Optional } from '../../common/validators';

const URL_DOC = {
  maxLength: 2048,
  example: 'https://example.com/hooks/taskhub',
  description:
    'http or https, to a globally routable address (loopback, private, link-local and reserved ' +
    'targets are refused unless WEBHOOK_ALLOW_HOSTS names the host).',
};
const EVENTS_DOC = {
  enum: WEBHOOK_EVENTS,
  isArray: true,
  minItems: 1,
  maxItems: WEBHOOK_EVENTS.length,
  uniqueItems: true,
  example: ['task.created'],
};

export class CreateWebhookDto {
  @ApiProperty(URL_DOC)
  @IsString()
  @MaxLength(2048)
  url!: string;

  @ApiProperty(EVENTS_DOC)
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(WEBHOOK_EVENTS.length)
  @ArrayUnique()
  @IsIn(WEBHOOK_EVENTS, { each: true })
  events!: WebhookEvent[];
}

/** The fields sent change; at least one. */
export class UpdateWebhookDto {
  @ApiPropertyOptional(URL_DOC)
  @Optional()
  @IsString()
  @MaxLength(2048)
  url?: string;

  @ApiPropertyOptional(EVENTS_DOC)
  @Optional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(WEBHOOK_EVENTS.length)
  @ArrayUnique()
  @IsIn(WEBHOOK_EVENTS, { each: true })
  events?: WebhookEvent[];

  @ApiPropertyOptional({ description: 'false: no new deliveries until it is true again.' })
  @Optional()
  @IsBoolean()
  enabled?: boolean;
}

export class ListWebhooksQueryDto extends PageQueryDto {}

export class WebhookDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() url!: string;
  @ApiProperty({ enum: WEBHOOK_EVENTS, isArray: true }) events!: string[];
  @ApiProperty({ description: 'false: no new deliveries.' }) enabled!: boolean;
  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'After a secret rotation: until when the previous secret signs too.',
  })
  previousSecretExpiresAt!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;

  static from(webhook: WebhookEntity): WebhookDto {
    const expires = webhook.previousSecretExpiresAt;
    return {
      id: webhook.id,
      url: webhook.url,
      events: webhook.events,
      enabled: webhook.enabled,
      previousSecretExpiresAt: expires && expires > new Date() ? expires.toISOString() : null,
      createdAt: webhook.createdAt.toISOString(),
    };
  }
}

export class CreatedWebhookDto extends WebhookDto {
  @ApiPropertyOptional({
    example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    description:
      'The signing secret (Standard Webhooks), shown in this response only. Absent from a ' +
      'replay of an Idempotency-Key.',
  })
  secret?: string;
}

export class RotatedSecretDto extends WebhookDto {
  @ApiProperty({
    example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    description: 'The new signing secret, shown in this response only.',
  })
  secret!: string;
}

export class PingAcceptedDto {
  @ApiProperty({
    format: 'uuid',
    description: 'The delivery of the `webhook.ping` event: follow it in the deliveries.',
  })
  deliveryId!: string;
}

export class WebhookPageDto {
  @ApiProperty({ type: [WebhookDto] }) data!: WebhookDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}

export class DeliveryDto {
  @ApiProperty({ format: 'uuid', description: 'The `Webhook-Id` header of every attempt.' })
  id!: string;
  @ApiProperty({ format: 'uuid' }) eventId!: string;
  @ApiProperty({ enum: DELIVERY_EVENT_TYPES }) eventType!: string;
  @ApiProperty({
    enum: DELIVERY_STATUSES,
    description: '`failed`: every attempt failed; the delivery was dead-lettered.',
  })
  status!: DeliveryStatus;
  @ApiProperty({ type: 'integer' }) attempts!: number;
  @ApiProperty({ type: 'integer', nullable: true }) lastStatusCode!: number | null;
  @ApiProperty({ type: String, nullable: true }) lastError!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time', type: String, nullable: true }) deliveredAt!: string | null;

  static from(delivery: WebhookDeliveryEntity): DeliveryDto {
    return {
      id: delivery.id,
      eventId: delivery.eventId,
      eventType: delivery.eventType,
      status: delivery.status,
      attempts: delivery.attempts,
      lastStatusCode: delivery.lastStatusCode,
      lastError: delivery.lastError,
      createdAt: delivery.createdAt.toISOString(),
      deliveredAt: delivery.deliveredAt?.toISOString() ?? null,
    };
  }
}

export class DeliveryPageDto {
  @ApiProperty({ type: [DeliveryDto] }) data!: DeliveryDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}
