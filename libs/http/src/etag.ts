import { ApiException } from './api.exception';

/** A strong ETag for a versioned resource: it changes exactly when the version does. */
export const etagFor = (version: number): string => `"v${version}"`;

function versionOf(tag: string): number | undefined {
  const match = /^"v(\d{1,9})"$/.exec(tag);
  return match ? Number(match[1]) : undefined;
}

function splitTags(header: string): string[] {
  return header
    .split(',')
    .map((tag) => tag.trim())
    .filter(Boolean);
}

/** If-None-Match uses weak comparison (RFC 9110 §13.1.2): W/ is ignored. */
export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return splitTags(header).some((tag) => tag === '*' || tag.replace(/^W\//, '') === etag);
}

/**
 * The versions an If-Match header allows: undefined when absent (unconditional), 'any' for `*`,
 * else the listed versions. Strong comparison: weak tags and foreign tags match nothing.
 */
export type IfMatch = undefined | 'any' | number[];

export function parseIfMatch(header: string | undefined): IfMatch {
  if (header === undefined) return undefined;
  const tags = splitTags(header);
  if (tags.length === 0) {
    throw new ApiException('BAD_REQUEST', 'If-Match must list entity tags or be "*".');
  }
  if (tags.includes('*')) return 'any';
  return tags.map(versionOf).filter((v): v is number => v !== undefined);
}
