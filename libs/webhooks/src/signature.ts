import { createHmac } from 'node:crypto';
import { signingKey } from './secrets';

/**
 * The Standard Webhooks signature (CONTRACT §5): `v1,` and the base64 HMAC-SHA256, under the
 * secret's key, of `<id>.<timestamp>.<body>`.
 */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', signingKey(secret))
    .update(`${id}.${timestamp}.${body}`)
    .digest('base64');
  return `v1,${mac}`;
}
