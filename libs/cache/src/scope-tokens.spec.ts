import { ScopeTokens } from './scope-tokens';

describe('ScopeTokens', () => {
  afterEach(() => jest.useRealTimers());

  it('keeps at most max scopes, forgetting the one set longest ago', () => {
    const tokens = new ScopeTokens(3, 1000);
    tokens.set('a', 'r1');
    tokens.set('b', 'r1');
    tokens.set('c', 'r1');
    tokens.set('a', 'r2'); // set again: now the newest
    tokens.set('d', 'r1');
    expect(tokens.size).toBe(3);
    expect(tokens.get('b')).toBeUndefined();
    expect([tokens.get('a'), tokens.get('c'), tokens.get('d')]).toEqual(['r2', 'r1', 'r1']);
  });

  it('forgets an instance-only token after its lifetime, and keeps a Redis one', () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const tokens = new ScopeTokens(10, 1000);
    tokens.set('local', 'l1');
    tokens.set('shared', 'r5');
    jest.setSystemTime(1_000_999);
    expect(tokens.get('local')).toBe('l1');
    jest.setSystemTime(1_001_000);
    expect(tokens.has('local')).toBe(false);
    expect(tokens.get('shared')).toBe('r5');
    expect(tokens.size).toBe(1);
  });

  it('does not let a Redis token inherit an earlier local lifetime', () => {
    jest.useFakeTimers({ now: 0 });
    const tokens = new ScopeTokens(10, 1000);
    tokens.set('s', 'l1');
    tokens.set('s', 'r7');
    jest.setSystemTime(5000);
    expect(tokens.get('s')).toBe('r7');
  });

  it('deletes and clears', () => {
    const tokens = new ScopeTokens(10, 1000);
    tokens.set('a', 'r1');
    tokens.set('b', 'l1');
    tokens.delete('a');
    expect(tokens.get('a')).toBeUndefined();
    tokens.clear();
    expect(tokens.size).toBe(0);
    expect(tokens.get('b')).toBeUndefined();
  });
});
