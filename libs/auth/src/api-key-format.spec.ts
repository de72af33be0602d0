import { createHash } from 'node:crypto';
import { generateApiKey, parseApiKey } from './api-key-format';

describe('API key format', () => {
  it('is thk_, 32 random base62 characters and a 6-character checksum; the prefix is its start', () => {
    const { key, prefix, hash } = generateApiKey();
    expect(key).toMatch(/^thk_[0-9A-Za-z]{38}$/);
    expect(prefix).toBe(key.slice(0, 12));
    expect(hash).toEqual(createHash('sha256').update(key).digest());
  });

  it('parses what it generates to the same hash', () => {
    for (let i = 0; i < 200; i += 1) {
      const { key, hash } = generateApiKey();
      expect(parseApiKey(key)).toEqual(hash);
    }
  });

  it('never repeats, and uses the whole alphabet evenly enough', () => {
    const keys = Array.from({ length: 2000 }, () => generateApiKey().key);
    expect(new Set(keys).size).toBe(keys.length);
    const counts = new Map<string, number>();
    for (const key of keys)
      for (const c of key.slice(4, 36)) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(62);
    // 64 000 characters over 62 symbols: about 1032 each.
    for (const count of counts.values()) expect(count).toBeGreaterThan(850);
  });

  it('refuses a malformed key or a bad checksum', () => {
    const { key } = generateApiKey();
    const flipped = key.slice(0, 10) + (key[10] === 'a' ? 'b' : 'a') + key.slice(11);
    const badSum = key.slice(0, -1) + (key.endsWith('0') ? '1' : '0');
    for (const bad of [
      '',
      'thk_',
      key.slice(0, -1),
      `${key}x`,
      key.replace('thk_', 'thx_'),
      key.toUpperCase(),
      flipped,
      badSum,
      `${key.slice(0, -2)}-_`,
    ]) {
      expect(parseApiKey(bad)).toBeUndefined();
    }
  });
});
