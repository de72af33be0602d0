import { QUEUES } from '@app/messaging';
import { TaskEvent, WEBHOOK_DELIVERY } from '@app/webhooks';
import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/**
 * A task event → one delivery per subscription of its owner to its type, each with its delivery
 * job (`{deliveryId}`, as addToOutbox writes it) in the outbox. One statement, so atomic by
 * itself, and one round trip whatever the number of subscriptions (a transaction of a SELECT
 * and two INSERTs per subscription made this the worker's largest cost per delivery).
 * Idempotent: (webhook, event) is unique, so an event fanned out twice makes no second delivery
 * and no second job.
 */
const FAN_OUT = `
  WITH subscriptions AS (
    SELECT id FROM webhooks WHERE user_id = $1 AND $2 = ANY (events) AND enabled
  ), made AS (
    INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, payload)
    SELECT id, $3, $2, $4 FROM subscriptions
    ON CONFLICT (webhook_id, event_id) DO NOTHING
    RETURNING id
  )
  INSERT INTO outbox (queue, pattern, payload)
  SELECT $5, $6, jsonb_build_object('deliveryId', id) FROM made
  RETURNING 1`;

@Injectable()
export class WebhookFanout {
  constructor(private readonly dataSource: DataSource) {}

  /** Returns the number of deliveries it made. */
  async fanOut(event: TaskEvent): Promise<number> {
    const payload = {
      id: event.id,
      type: event.type,
      createdAt: event.createdAt,
      data: event.data,
    };
    const made = await this.dataSource.query<unknown[]>(FAN_OUT, [
      event.userId,
      event.type,
      event.id,
      JSON.stringify(payload),
      QUEUES.webhookDeliveries,
      WEBHOOK_DELIVERY,
    ]);
    return made.length;
  }
}
