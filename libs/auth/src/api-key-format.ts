import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const API_KEY_PREFIX = 'thk_';
/** 32 base62 characters: about 190 bits of randomness. */
const RANDOM_LENGTH = 32;
/** A CRC-32 in base62 (62^6 > 2^32). */
const CHECKSUM_LENGTH = 6;
/** What an owner sees of a key in lists: `thk_` and the first 8 random characters. */
const DISPLAY_LENGTH = API_KEY_PREFIX.length + 8;
const SHAPE = new RegExp(`^${API_KEY_PREFIX}[0-9A-Za-z]{${RANDOM_LENGTH + CHECKSUM_LENGTH}}$`);

function base62(value: number, width: number): string {
  let out = '';
  for (let rest = value; out.length < width; rest = Math.floor(rest / 62)) {
    out = ALPHABET[rest % 62] + out;
  }
  return out;
}

function checksum(body: string): string {
  return base62(crc32(body), CHECKSUM_LENGTH);
}

function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 = 4 × 62: rejecting the bytes above keeps every character equally likely.
      if (byte < 248 && out.length < length) out += ALPHABET[byte % 62];
    }
  }
  return out;
}

export interface NewApiKey {
  /** The plaintext, shown to its owner once and never stored. */
  key: string;
  prefix: string;
  hash: Buffer;
}

/**
 * `thk_` + 32 random base62 characters + a 6-character CRC-32 of what precedes it (the scheme of
 * GitHub's tokens): a typo, a truncated paste or a made-up key is refused without a database
 * query, and secret scanners can recognise our keys.
 */
export function generateApiKey(): NewApiKey {
  const body = API_KEY_PREFIX + randomBase62(RANDOM_LENGTH);
  const key = body + checksum(body);
  return { key, prefix: key.slice(0, DISPLAY_LENGTH), hash: hashApiKey(key) };
}

/** The SHA-256 of a well-formed key with a good checksum; undefined for anything else. */
export function parseApiKey(key: string): Buffer | undefined {
  if (!SHAPE.test(key)) return undefined;
  const split = key.length - CHECKSUM_LENGTH;
  if (checksum(key.slice(0, split)) !== key.slice(split)) return undefined;
  return hashApiKey(key);
}

function hashApiKey(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}
