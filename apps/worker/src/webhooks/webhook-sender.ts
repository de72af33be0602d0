import { AppConfig, InjectConfig } from '@app/config';
import { Breakers } from '@app/resilience';
import { WebhookSecrets, guardedLookup, signWebhook, targetProblem } from '@app/webhooks';
import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import * as http from 'node:http';
import * as https from 'node:https';
import { DataSource } from 'typeorm';

/** The most of a receiver's answer that is read (then the connection is dropped). */
const MAX_ANSWER_BYTES = 64 * 1024;
/**
 * How long an idle connection to a receiver is kept for the next delivery: under the 5 s that
 * Node's and most servers' keep-alive timeouts default to (a server's own `Keep-Alive: timeout`
 * hint, less a second, wins when shorter), so a connection is not reused as the server closes it.
 */
const IDLE_CONNECTION_MS = 4000;

interface Pending {
  id: string;
  webhook_id: string;
  status: string;
  payload: unknown;
  url: string;
  secret: Buffer;
  /** The secret before the last rotation, while it still signs. */
  previous_secret: Buffer | null;
}

/** What one attempt came to. */
export interface Attempt {
  delivered: boolean;
  /** No point trying again: the target is refused, or the delivery is gone or settled. */
  final: boolean;
  statusCode?: number;
  error?: string;
}

/** A receiver's non-2xx: a failure for the host's breaker too. */
class ReceiverError extends Error {
  constructor(readonly statusCode: number) {
    super(`the receiver answered ${statusCode}`);
  }
}

/**
 * Makes one attempt at a delivery (CONTRACT §5): the stored body, signed Standard Webhooks style
 * under the subscription's secret, POSTed through the subscription's own breaker (a dead
 * receiver trips its own, not another subscriber's on the same host), which aborts it at
 * BREAKER_WEBHOOK_TIMEOUT_MS. The
 * address is checked when the connection is made, so a name that resolves to an internal
 * address (DNS rebinding included) is refused unless WEBHOOK_ALLOW_HOSTS names it. Redirects are
 * not followed. The attempt is recorded on the delivery; `failed` once `lastAttempt` fails.
 */
@Injectable()
export class WebhookSender implements OnApplicationShutdown {
  private readonly secrets: WebhookSecrets;
  private readonly lookup: ReturnType<typeof guardedLookup>;
  /**
   * Connections to receivers are kept alive and reused: a subscriber gets a delivery per change,
   * and a new connection (a TLS handshake, for https) each time cost the worker and the receiver
   * more than the delivery itself. The address check is unaffected: it runs when a connection is
   * made, and a connection's address cannot change.
   */
  private readonly agents = {
    http: new http.Agent({ keepAlive: true, timeout: IDLE_CONNECTION_MS }),
    https: new https.Agent({ keepAlive: true, timeout: IDLE_CONNECTION_MS }),
  };

  constructor(
    @InjectConfig() private readonly config: AppConfig,
    private readonly dataSource: DataSource,
    private readonly breakers: Breakers,
  ) {
    this.secrets = new WebhookSecrets(config.webhooks.secretsKey);
    this.lookup = guardedLookup(config.webhooks.allowHosts);
  }

  onApplicationShutdown(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  async attempt(deliveryId: string, lastAttempt: boolean): Promise<Attempt> {
    const [delivery] = await this.dataSource.query<Pending[]>(
      `SELECT d.id, d.webhook_id, d.status, d.payload, w.url, w.secret,
              CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret END
                AS previous_secret
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = $1`,
      [deliveryId],
    );
    // Its subscription was deleted, or an earlier run settled it (a redelivered job).
    if (!delivery || delivery.status !== 'pending') return { delivered: false, final: true };

    const body = JSON.stringify(delivery.payload);
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'Taskhub-Webhooks/1',
      'webhook-id': delivery.id,
      'webhook-timestamp': String(timestamp),
      // After a rotation, signed under the old secret too until it expires: Standard Webhooks
      // sends several signatures, space-separated, and a receiver accepts any it can verify.
      'webhook-signature': [delivery.secret, delivery.previous_secret]
        .filter((secret): secret is Buffer => secret !== null)
        .map((secret) => signWebhook(this.secrets.decrypt(secret), delivery.id, timestamp, body))
        .join(' '),
    };
    const url = new URL(delivery.url);
    let outcome: Attempt;
    try {
      // An address in the URL itself is never looked up: checked here, against today's
      // allow-list (it may have changed since the subscription was made).
      const refused = targetProblem(delivery.url, this.config.webhooks.allowHosts);
      if (refused) throw Object.assign(new Error(`url ${refused}`), { code: 'EWEBHOOKTARGET' });
      const statusCode = await this.breakers.runWebhook(delivery.webhook_id, (signal) =>
        this.post(url, body, headers, signal),
      );
      outcome = { delivered: true, final: true, statusCode };
    } catch (error) {
      const refused = (error as { code?: string }).code === 'EWEBHOOKTARGET';
      outcome = {
        delivered: false,
        final: refused || lastAttempt,
        statusCode: error instanceof ReceiverError ? error.statusCode : undefined,
        error: error instanceof Error ? error.message : String(error),
      };
    }
    const status = outcome.delivered ? 'succeeded' : outcome.final ? 'failed' : 'pending';
    await this.dataSource.query(
      `UPDATE webhook_deliveries
          SET attempts = attempts + 1, status = $2::varchar, last_status_code = $3,
              last_error = $4, updated_at = now(),
              delivered_at = CASE WHEN $2::varchar = 'succeeded' THEN now() END
        WHERE id = $1 AND status = 'pending'`,
      [delivery.id, status, outcome.statusCode ?? null, outcome.error?.slice(0, 500) ?? null],
    );
    return outcome;
  }

  /** POSTs and resolves with a 2xx status; a non-2xx rejects (ReceiverError). */
  private post(
    url: URL,
    body: string,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<number> {
    const secure = url.protocol === 'https:';
    const client = secure ? https : http;
    return new Promise((resolve, reject) => {
      const request = client.request(
        url,
        {
          method: 'POST',
          headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
          signal,
          lookup: this.lookup,
          agent: secure ? this.agents.https : this.agents.http,
        },
        (response) => {
          let read = 0;
          response.on('data', (chunk: Buffer) => {
            read += chunk.length;
            if (read > MAX_ANSWER_BYTES) response.destroy();
          });
          response.on('close', () => {
            const code = response.statusCode ?? 0;
            if (code >= 200 && code < 300) resolve(code);
            else reject(new ReceiverError(code));
          });
        },
      );
      request.on('error', reject);
      request.end(body);
    });
  }
}
