export { TASK_EVENT, WEBHOOK_DELIVERY, WEBHOOK_EVENTS } from './events';
export type { TaskEvent, WebhookDeliveryJob, WebhookEvent } from './events';
export { WebhookSecrets, newWebhookSecret } from './secrets';
export { signWebhook } from './signature';
export { guardedLookup, hostOf, targetProblem } from './targets';
