import { ApiException } from './api.exception';
import { etagFor, ifNoneMatchHits, parseIfMatch } from './etag';

describe('entity tags', () => {
  it('makes a strong tag from the version', () => {
    expect(etagFor(3)).toBe('"v3"');
  });

  it('If-None-Match: weak comparison, lists and *', () => {
    expect(ifNoneMatchHits('"v3"', '"v3"')).toBe(true);
    expect(ifNoneMatchHits('W/"v3"', '"v3"')).toBe(true);
    expect(ifNoneMatchHits('"v1", "v3"', '"v3"')).toBe(true);
    expect(ifNoneMatchHits('*', '"v3"')).toBe(true);
    expect(ifNoneMatchHits('"v2"', '"v3"')).toBe(false);
    expect(ifNoneMatchHits(undefined, '"v3"')).toBe(false);
  });

  it('If-Match: strong comparison; weak and foreign tags match nothing', () => {
    expect(parseIfMatch(undefined)).toBeUndefined();
    expect(parseIfMatch('*')).toBe('any');
    expect(parseIfMatch('"v2", "v5"')).toEqual([2, 5]);
    expect(parseIfMatch('W/"v2"')).toEqual([]);
    expect(parseIfMatch('"abc"')).toEqual([]);
    expect(() => parseIfMatch(' , ')).toThrow(ApiException);
  });
});
