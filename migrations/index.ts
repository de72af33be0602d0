import { Init1795392000000 } from './1795392000000-init';
import { ApiKeys1795478400000 } from './1795478400000-api-keys';
import { RateLimits1795564800000 } from './1795564800000-rate-limits';
import { RequestLogs1795651200000 } from './1795651200000-request-logs';
import { Outbox1795737600000 } from './1795737600000-outbox';
import { Webhooks1795824000000 } from './1795824000000-webhooks';
import { Jobs1795910400000 } from './1795910400000-jobs';
import { RequestLogPartitionFunctions1795996800000 } from './1795996800000-request-log-partition-functions';
import { WebhookManagement1796083200000 } from './1796083200000-webhook-management';

/**
 * Every migration, in order. Listed rather than globbed so the compiled apps, the CLI and the
 * tests all run the same set. `npm run migration:generate -- migrations/<name>` writes a new
 * file; add its class here.
 */
export const MIGRATIONS = [
  Init1795392000000,
  ApiKeys1795478400000,
  RateLimits1795564800000,
  RequestLogs1795651200000,
  Outbox1795737600000,
  Webhooks1795824000000,
  Jobs1795910400000,
  RequestLogPartitionFunctions1795996800000,
  WebhookManagement1796083200000,
];
