/** The task events a webhook can subscribe to (CONTRACT §5). */
export const WEBHOOK_EVENTS = [
  'task.created',
  'task.updated',
  'task.completed',
  'task.deleted',
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** The outbox message for one task change, on the `task-events` queue. */
export const TASK_EVENT = 'task.event';
/** One delivery to make, on the `webhook-deliveries` queue. */
export const WEBHOOK_DELIVERY = 'webhook.deliver';

/** A task change as published (its `id` becomes the deliveries' event id). */
export interface TaskEvent {
  id: string;
  type: WebhookEvent;
  createdAt: string;
  userId: string;
  data: unknown;
}

export interface WebhookDeliveryJob {
  deliveryId: string;
}
