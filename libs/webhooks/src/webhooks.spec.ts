import { WebhookSecrets, newWebhookSecret } from './secrets';
import { signWebhook } from './signature';
import { promisify } from 'node:util';
import { guardedLookup, isGlobalAddress, targetProblem } from './targets';

describe('webhook signatures (Standard Webhooks)', () => {
  it("match the specification's example", () => {
    expect(
      signWebhook(
        'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
        'msg_p5jXN8AQM9LWM0D4loKWxJek',
        1614265330,
        '{"test": 2432232314}',
      ),
    ).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  it('change with the secret, the id, the timestamp and the body', () => {
    const secret = newWebhookSecret();
    const signed = signWebhook(secret, 'id', 1, 'body');
    expect(signWebhook(newWebhookSecret(), 'id', 1, 'body')).not.toBe(signed);
    expect(signWebhook(secret, 'id2', 1, 'body')).not.toBe(signed);
    expect(signWebhook(secret, 'id', 2, 'body')).not.toBe(signed);
    expect(signWebhook(secret, 'id', 1, 'body ')).not.toBe(signed);
  });
});

describe('webhook secrets at rest', () => {
  const secrets = new WebhookSecrets('k'.repeat(40));

  it('round-trip, with a fresh IV each time', () => {
    const secret = newWebhookSecret();
    const one = secrets.encrypt(secret);
    expect(secrets.decrypt(one)).toBe(secret);
    expect(secrets.encrypt(secret).equals(one)).toBe(false);
    expect(one.toString('latin1')).not.toContain(secret);
  });

  it('refuse data altered, or encrypted under another key', () => {
    const stored = secrets.encrypt(newWebhookSecret());
    const altered = Buffer.from(stored);
    altered[altered.length - 1] ^= 1;
    expect(() => secrets.decrypt(altered)).toThrow();
    expect(() => new WebhookSecrets('x'.repeat(40)).decrypt(stored)).toThrow();
  });
});

describe('webhook targets', () => {
  it.each([
    // IPv4: loopback, private, shared, link-local (cloud metadata), "this network", broadcast
    '127.0.0.1',
    '127.255.255.254',
    '10.0.0.1',
    '172.16.5.4',
    '192.168.1.1',
    '100.64.0.1',
    '169.254.169.254',
    '0.0.0.0',
    '255.255.255.255',
    // IPv4: IETF protocol assignments, documentation, benchmarking, 6to4 relay, multicast, reserved
    '192.0.0.8',
    '192.0.2.1',
    '198.51.100.7',
    '203.0.113.9',
    '198.18.0.1',
    '192.88.99.1',
    '224.0.0.1',
    '240.0.0.1',
    // IPv6: loopback, unspecified, unique-local, link-local, multicast, documentation, discard
    '::1',
    '::',
    'fd00::1',
    'fe80::1',
    'ff02::1',
    '2001:db8::1',
    '100::1',
    // IPv6 spellings of IPv4: mapped, compatible (deprecated), NAT64 (well-known and local-use),
    // 6to4 and Teredo
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    '::ffff:7f00:1',
    '::7f00:1',
    '::127.0.0.1',
    '64:ff9b::7f00:1',
    '64:ff9b::808:808',
    '64:ff9b:1::a00:1',
    '2002:7f00:1::',
    '2001::1',
    // outside IPv6's global unicast space 2000::/3
    '4000::1',
    'not an address',
    '',
  ])('%s is not a global address', (address) => {
    expect(isGlobalAddress(address)).toBe(false);
  });

  it.each([
    '93.184.216.34',
    '8.8.8.8',
    '172.32.0.1',
    '100.128.0.1',
    '2606:4700::1111',
    '2a00:1450:4001::200e',
    '::ffff:8.8.8.8',
  ])('%s is a global address', (address) => {
    expect(isGlobalAddress(address)).toBe(true);
  });

  it.each([
    ['http://127.0.0.1:9000/x', /global/],
    ['http://2130706433/x', /global/],
    ['http://0x7f.1/x', /global/],
    ['http://0177.0.0.1/x', /global/],
    ['http://127.1/x', /global/],
    ['http://[::1]/x', /global/],
    ['http://[::7f00:1]/x', /global/],
    ['http://[::ffff:7f00:1]/x', /global/],
    ['http://[64:ff9b::7f00:1]/x', /global/],
    ['http://[2002:7f00:1::]/x', /global/],
    ['http://[2001:db8::1]/x', /global/],
    ['http://192.0.2.1/x', /global/],
    ['http://169.254.169.254/latest/meta-data', /global/],
    ['http://LOCALHOST/x', /loopback/],
    ['http://localhost./x', /loopback/],
    ['http://localhost../x', /loopback/],
    ['http://app.localhost/x', /loopback/],
    ['http://app.localhost./x', /loopback/],
    ['ftp://example.com/x', /http/],
    ['https://a:b@example.com/x', /credentials/],
    ['example.com/x', /absolute/],
  ])('refuses %s without DNS', (url, problem) => {
    expect(targetProblem(url, [])).toMatch(problem);
  });

  it('accepts a public name or address, and an allow-listed host in any spelling', () => {
    expect(targetProblem('https://hooks.example.com/x', [])).toBeUndefined();
    expect(targetProblem('https://hooks.example.com./x', [])).toBeUndefined();
    expect(targetProblem('https://8.8.8.8/x', [])).toBeUndefined();
    expect(targetProblem('http://127.0.0.1:9000/x', ['127.0.0.1'])).toBeUndefined();
    expect(targetProblem('http://2130706433:9000/x', ['127.0.0.1'])).toBeUndefined();
    expect(targetProblem('http://[::1]:9000/x', ['::1'])).toBeUndefined();
    expect(targetProblem('http://localhost.:9000/x', ['localhost'])).toBeUndefined();
  });

  it('refuses, at connection, a name that resolves to an address that is not global', async () => {
    const lookup = promisify(guardedLookup([]));
    await expect(lookup('localhost', {})).rejects.toMatchObject({ code: 'EWEBHOOKTARGET' });
    const allowed = promisify(guardedLookup(['localhost']));
    await expect(allowed('localhost', {})).resolves.toBeDefined();
  });
});
