import {
  DELIVERY_STATUSES,
  DeliveryStatus,
  WebhookDeliveryEntity,
  WebhookEntity,
} from '@app/database';
import { PageQueryDto } from '@app/http';
import { WEBHOOK_EVENTS, WebhookEvent } from '@app/webhooks';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  ArrayMinSize,
  ArrayUnique,
  IsArray,
  IsIn,
  IsString,
  MaxLength,
} from 'class-validator';

export class CreateWebhookDto {
  @ApiProperty({
    maxLength: 2048,
    example: 'https://example.com/hooks/taskhub',
    description:
      'http or https. Loopback, private and link-local targets are refused unless ' +
      'WEBHOOK_ALLOW_HOSTS names the host.',
  })
  @IsString()
  @MaxLength(2048)
  url!: string;

  @ApiProperty({ enum: WEBHOOK_EVENTS, isArray: true, example: ['task.created'] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(WEBHOOK_EVENTS.length)
  @ArrayUnique()
  @IsIn(WEBHOOK_EVENTS, { each: true })
  events!: WebhookEvent[];
}

export class ListWebhooksQueryDto extends PageQueryDto {}

export class WebhookDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() url!: string;
  @ApiProperty({ enum: WEBHOOK_EVENTS, isArray: true }) events!: string[];
  @ApiProperty({ format: 'date-time' }) createdAt!: string;

  static from(webhook: WebhookEntity): WebhookDto {
    return {
      id: webhook.id,
      url: webhook.url,
      events: webhook.events,
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

export class WebhookPageDto {
  @ApiProperty({ type: [WebhookDto] }) data!: WebhookDto[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}

export class DeliveryDto {
  @ApiProperty({ format: 'uuid', description: 'The `Webhook-Id` header of every attempt.' })
  id!: string;
  @ApiProperty({ format: 'uuid' }) eventId!: string;
  @ApiProperty({ enum: WEBHOOK_EVENTS }) eventType!: string;
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
