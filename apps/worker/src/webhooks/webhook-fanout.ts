import { QUEUES, addToOutbox } from '@app/messaging';
import { TaskEvent, WEBHOOK_DELIVERY, WebhookDeliveryJob } from '@app/webhooks';
import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/**
 * A task event → one delivery per subscription of its owner to its type, each with its delivery
 * job in the outbox, in one transaction. Idempotent: (webhook, event) is unique, so an event
 * fanned out twice makes no second delivery and no second job.
 */
@Injectable()
export class WebhookFanout {
  constructor(private readonly dataSource: DataSource) {}

  /** Returns the number of deliveries it made. */
  fanOut(event: TaskEvent): Promise<number> {
    return this.dataSource.transaction(async (manager) => {
      const subscriptions = await manager.query<Array<{ id: string }>>(
        `SELECT id FROM webhooks WHERE user_id = $1 AND $2 = ANY (events)`,
        [event.userId, event.type],
      );
      const payload = {
        id: event.id,
        type: event.type,
        createdAt: event.createdAt,
        data: event.data,
      };
      let made = 0;
      for (const { id } of subscriptions) {
        const rows = await manager.query<Array<{ id: string }>>(
          `INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, payload)
           VALUES ($1, $2, $3, $4) ON CONFLICT (webhook_id, event_id) DO NOTHING RETURNING id`,
          [id, event.id, event.type, JSON.stringify(payload)],
        );
        if (rows.length === 0) continue;
        const job: WebhookDeliveryJob = { deliveryId: rows[0].id };
        await addToOutbox(manager, QUEUES.webhookDeliveries, WEBHOOK_DELIVERY, job);
        made += 1;
      }
      return made;
    });
  }
}
