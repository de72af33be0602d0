import { parseConfig } from '@app/config';
import type Redis from 'ioredis';
import { EventEmitter } from 'node:events';
import type { DataSource } from 'typeorm';
import { generateApiKey } from './api-key-format';
import type { ApiKeyUsage } from './api-key-usage';
import { ApiKeyVerifier, MAX_TRUST_MS } from './api-key-verifier';

/**
 * How long a cached verification is trusted, on a fake clock. The database and the Redis channel
 * are stand-ins here (the e2e specs run both for real): what is measured is when the verifier
 * goes back to the database.
 */
describe('ApiKeyVerifier trust', () => {
  const { key, hash } = generateApiKey();
  let queries: number;
  let verifier: ApiKeyVerifier;
  let subscriber: EventEmitter;

  beforeEach(() => {
    jest.useFakeTimers({ now: Date.parse('2026-12-04T12:00:00Z') });
    queries = 0;
    const row = {
      id: 'key-1',
      user_id: 'user-1',
      key_hash: hash,
      scopes: ['tasks:read'],
      tier: null,
      expires_at: null,
      revoked_at: null,
      role: 'user',
      user_tier: 'free',
    };
    const dataSource = {
      query: () => {
        queries += 1;
        return Promise.resolve([row]);
      },
    } as unknown as DataSource;
    // A subscribed connection that answers every command at once: the channel stays alive.
    subscriber = Object.assign(new EventEmitter(), {
      status: 'ready',
      subscribe: () => Promise.resolve(1),
      ping: () => Promise.resolve('PONG'),
      disconnect: () => undefined,
    });
    const redis = { duplicate: () => subscriber } as unknown as Redis;
    const usage = { record: () => undefined } as unknown as ApiKeyUsage;
    verifier = new ApiKeyVerifier(parseConfig({}), dataSource, redis, usage);
    verifier.onModuleInit();
    subscriber.emit('ready');
  });

  afterEach(() => {
    verifier.onApplicationShutdown();
    jest.useRealTimers();
  });

  it('while the channel is alive, a verification is trusted, but never past MAX_TRUST_MS', async () => {
    // Let the subscription confirm before the key is first verified.
    await jest.advanceTimersByTimeAsync(0);
    expect(await verifier.verify(key)).toMatchObject({ apiKeyId: 'key-1' });
    expect(queries).toBe(1);
    await jest.advanceTimersByTimeAsync(MAX_TRUST_MS - 1000);
    expect(await verifier.verify(key)).toMatchObject({ apiKeyId: 'key-1' });
    expect(queries).toBe(1);
    // A revocation whose message never came is read from the database at the latest now.
    await jest.advanceTimersByTimeAsync(1000);
    await verifier.verify(key);
    expect(queries).toBe(2);
  });
});
