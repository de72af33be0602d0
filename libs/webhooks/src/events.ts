/** The task events a webhook can subscribe to (CONTRACT §5). */
export const WEBHOOK_EVENTS = [
  'task.created',
  'task.updated',
  'task.completed',
  'task.deleted',
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** The event of a test delivery (POST /v1/webhooks/:id/ping): any subscription gets it. */
export const PING_EVENT = 'webhook.ping';
/** Every event type a delivery can carry. */
export const DELIVERY_EVENT_TYPES = [...WEBHOOK_EVENTS, PING_EVENT] as const;

/** How long a rotated-out signing secret keeps signing beside the new one. */
export const SECRET_OVERLAP_HOURS = 24;

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
