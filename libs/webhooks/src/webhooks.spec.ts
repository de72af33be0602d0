import { WebhookSecrets, newWebhookSecret } from './secrets';
import { signWebhook } from './signature';
import { isInternalAddress, targetProblem } from './targets';

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
    '127.0.0.1',
    '10.0.0.1',
    '172.16.5.4',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '::1',
    '::',
    'fd00::1',
    'fe80::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    'not an address',
  ])('%s is internal', (address) => {
    expect(isInternalAddress(address)).toBe(true);
  });

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700::1111', '::ffff:8.8.8.8'])(
    '%s is not',
    (address) => {
      expect(isInternalAddress(address)).toBe(false);
    },
  );

  it('refuses what can be refused without DNS, unless the host is allow-listed', () => {
    expect(targetProblem('https://hooks.example.com/x', [])).toBeUndefined();
    expect(targetProblem('http://127.0.0.1:9000/x', [])).toMatch(/loopback/);
    expect(targetProblem('http://LOCALHOST/x', [])).toMatch(/loopback/);
    expect(targetProblem('http://app.localhost/x', [])).toMatch(/loopback/);
    expect(targetProblem('http://[::1]/x', [])).toMatch(/loopback/);
    expect(targetProblem('ftp://example.com/x', [])).toMatch(/http/);
    expect(targetProblem('https://a:b@example.com/x', [])).toMatch(/credentials/);
    expect(targetProblem('example.com/x', [])).toMatch(/absolute/);
    expect(targetProblem('http://127.0.0.1:9000/x', ['127.0.0.1'])).toBeUndefined();
    expect(targetProblem('http://[::1]:9000/x', ['::1'])).toBeUndefined();
  });
});
