import { parseConfig } from '@app/config';
import { AccessTokenService } from './access-token.service';

describe('AccessTokenService', () => {
  const config = parseConfig({ JWT_SECRET: 's'.repeat(40), JWT_ACCESS_TTL_SECONDS: '60' });
  const claims = {
    sub: '6f0c1d3e-0000-4000-8000-000000000001',
    role: 'user',
    tier: 'free',
  } as const;

  afterEach(() => jest.useRealTimers());

  it('verifies what it signs, and nothing signed with another secret', () => {
    const tokens = new AccessTokenService(config);
    expect(tokens.verify(tokens.sign(claims))).toEqual(claims);
    const other = new AccessTokenService(parseConfig({ JWT_SECRET: 'o'.repeat(40) }));
    expect(tokens.verify(other.sign(claims))).toBeUndefined();
  });

  it('after a rotation, verifies tokens signed with a previous secret and signs with the new one', () => {
    const before = new AccessTokenService(parseConfig({ JWT_SECRET: 'a'.repeat(40) }));
    const after = new AccessTokenService(
      parseConfig({ JWT_SECRET: 'b'.repeat(40), JWT_PREVIOUS_SECRETS: 'a'.repeat(40) }),
    );
    const unrelated = new AccessTokenService(parseConfig({ JWT_SECRET: 'c'.repeat(40) }));
    expect(after.signingKid).not.toBe(before.signingKid);
    expect(after.verify(before.sign(claims))).toEqual(claims);
    expect(after.verify(after.sign(claims))).toEqual(claims);
    expect(after.verify(unrelated.sign(claims))).toBeUndefined();
    // Once the previous secret is dropped, its tokens are refused.
    expect(before.verify(after.sign(claims))).toBeUndefined();
  });

  it('a remembered token still stops working once expired beyond the tolerance', () => {
    jest.useFakeTimers({ now: new Date('2026-11-23T10:00:00Z') });
    const tokens = new AccessTokenService(config);
    const token = tokens.sign(claims);
    expect(tokens.verify(token)).toEqual(claims); // verified, then remembered
    jest.setSystemTime(new Date('2026-11-23T10:01:25Z')); // exp + 25 s: within the 30 s tolerance
    expect(tokens.verify(token)).toEqual(claims);
    jest.setSystemTime(new Date('2026-11-23T10:01:31Z')); // exp + 31 s
    expect(tokens.verify(token)).toBeUndefined();
    expect(tokens.verify(token)).toBeUndefined();
  });

  it('never remembers a token that failed, and keeps at most 10 000 tokens', () => {
    const tokens = new AccessTokenService(config);
    const token = tokens.sign(claims);
    const tampered = `${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`;
    expect(tokens.verify(tampered)).toBeUndefined();
    expect(tokens.verify(tampered)).toBeUndefined();
    const remembered = (tokens as unknown as { verified: Map<string, unknown> }).verified;
    expect(remembered.has(tampered)).toBe(false);
    for (let i = 0; i < 10_050; i += 1) tokens.verify(tokens.sign({ ...claims, sub: `user-${i}` }));
    expect(remembered.size).toBe(10_000);
  });
});
