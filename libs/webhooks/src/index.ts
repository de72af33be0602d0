export {
  DELIVERY_EVENT_TYPES,
  PING_EVENT,
  SECRET_OVERLAP_HOURS,
  TASK_EVENT,
  WEBHOOK_DELIVERY,
  WEBHOOK_EVENTS,
} from './events';
export type { TaskEvent, WebhookDeliveryJob, WebhookEvent } from './events';
export { WebhookSecrets, newWebhookSecret } from './secrets';
export { signWebhook } from './signature';
export { guardedLookup, hostOf, targetProblem } from './targets';
