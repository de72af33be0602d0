import type Redis from 'ioredis';

export interface ChannelListener {
  /** Subscribed (again): messages published before this may have been missed. */
  subscribed(): void;
  /** The subscription is lost (Redis down, reconnecting): messages from now on may be missed. */
  lost(): void;
  message(message: string): void;
}

/**
 * Listens to one pub/sub channel on a connection of its own (a subscribed connection can send
 * nothing else). Subscribes again after each reconnect itself, rather than with ioredis's
 * autoResubscribe, so the listener learns both when it stops and when it starts hearing messages:
 * whatever it cached in between may be stale. Returns a function that closes the connection.
 */
export function listen(redis: Redis, channel: string, listener: ChannelListener): () => void {
  const subscriber = redis.duplicate({ autoResubscribe: false, lazyConnect: false });
  subscriber.on('ready', () => {
    subscriber.subscribe(channel).then(
      () => listener.subscribed(),
      // The connection drops, or already has: 'close' follows, then 'ready' and a new attempt.
      () => listener.lost(),
    );
  });
  subscriber.on('close', () => listener.lost());
  subscriber.on('error', () => listener.lost());
  subscriber.on('message', (_channel: string, message: string) => listener.message(message));
  return () => subscriber.disconnect();
}
