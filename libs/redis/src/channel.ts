import type Redis from 'ioredis';
import { withTimeout } from './timeout';

export interface ChannelListener {
  /** Subscribed (again): messages published before this may have been missed. */
  subscribed(): void;
  /**
   * The subscription is lost or has gone quiet (Redis down, hung, unreachable, reconnecting):
   * messages from now on may be missed.
   */
  lost(): void;
  message(message: string): void;
}

/**
 * The channel's heartbeat: the subscribed connection is pinged every CHANNEL_HEARTBEAT_MS, and a
 * ping unanswered within CHANNEL_DEADLINE_MS means it has gone quiet. Detection takes at most CHANNEL_HEARTBEAT_MS + CHANNEL_DEADLINE_MS
 * (350 ms) from the moment Redis stops answering, well inside the trust bounds that depend on it
 * (API keys: UNSUBSCRIBED_TRUST_MS; the cache: LOCAL_TOKEN_TTL_MS). Twenty pings a second per
 * instance and channel are nothing to Redis.
 */
export const CHANNEL_HEARTBEAT_MS = 100;
export const CHANNEL_DEADLINE_MS = 250;

/**
 * Listens to one pub/sub channel on a connection of its own (a subscribed connection can send
 * nothing else). Subscribes again after each reconnect itself, rather than with ioredis's
 * autoResubscribe, so the listener learns both when it stops and when it starts hearing messages:
 * whatever it cached in between may be stale.
 *
 * A subscribed connection is silent when no one publishes, so silence alone says nothing: a Redis
 * that hangs (SIGSTOP, a full disk, a long script) or a network that drops packets leaves the
 * socket open and never reports an error, and an instance would go on trusting what it cached.
 * So the connection is pinged (the heartbeat above); PING is answered on the same connection, in
 * order with the messages, so a pong proves that every message Redis published before it has been
 * heard. A ping unanswered in time reports the channel lost, and the connection is
 * dropped and made again (a hung socket may never close by itself); the listener hears
 * `subscribed` once a new subscription is confirmed. Returns a function that closes the
 * connection.
 */
export function listen(redis: Redis, channel: string, listener: ChannelListener): () => void {
  const subscriber = redis.duplicate({ autoResubscribe: false, lazyConnect: false });
  /** The subscription is confirmed and its last ping (if any) was answered in time. */
  let live = false;
  let pinging = false;
  const quiet = (): void => {
    if (live) {
      live = false;
      listener.lost();
    }
  };
  // A connection that cannot be trusted is dropped; ioredis connects again (its retryStrategy),
  // and 'ready' subscribes anew.
  const reconnect = (): void => {
    quiet();
    if (subscriber.status === 'ready') subscriber.disconnect(true);
  };
  subscriber.on('ready', () => {
    withTimeout(subscriber.subscribe(channel), CHANNEL_DEADLINE_MS).then(() => {
      live = true;
      listener.subscribed();
    }, reconnect);
  });
  subscriber.on('close', quiet);
  subscriber.on('error', quiet);
  subscriber.on('message', (_channel: string, message: string) => listener.message(message));
  const heartbeat = setInterval(() => {
    if (!live || pinging) return;
    pinging = true;
    withTimeout(subscriber.ping(), CHANNEL_DEADLINE_MS).then(
      () => (pinging = false),
      () => {
        pinging = false;
        reconnect();
      },
    );
  }, CHANNEL_HEARTBEAT_MS);
  heartbeat.unref();
  return () => {
    clearInterval(heartbeat);
    subscriber.disconnect();
  };
}
