import { BlockList, isIP } from 'node:net';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';

/**
 * Addresses a webhook may not reach unless its host is allow-listed (WEBHOOK_ALLOW_HOSTS): they
 * would let a user make the worker call what is behind the firewall (SSRF).
 */
const FORBIDDEN = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  FORBIDDEN.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  FORBIDDEN.addSubnet(network, prefix, 'ipv6');
}

/** A loopback, private, link-local or otherwise internal address (IPv4-mapped IPv6 too). */
export function isInternalAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return FORBIDDEN.check(mapped[1], 'ipv4');
  const family = isIP(address);
  if (family === 0) return true;
  return FORBIDDEN.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** Why `url` cannot be a webhook target, or undefined. Checks what it can without DNS. */
export function targetProblem(url: string, allowHosts: readonly string[]): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'must be an absolute URL';
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return 'must be http or https';
  if (parsed.username || parsed.password) return 'must not carry credentials';
  const host = hostOf(parsed);
  if (allowHosts.includes(host)) return undefined;
  if (host === 'localhost' || host.endsWith('.localhost')) return 'must not be a loopback host';
  if (isIP(host) !== 0 && isInternalAddress(host)) {
    return 'must not be a loopback, private or link-local address';
  }
  return undefined;
}

/** The URL's host as compared with the allow-list: lower case, IPv6 without brackets. */
export function hostOf(url: URL): string {
  return url.hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for http.request that refuses internal addresses, at connection time: checking
 * the name once and connecting later would let DNS answer differently in between (rebinding).
 */
export function guardedLookup(allowHosts: readonly string[]) {
  return (hostname: string, options: object, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      const allowed = allowHosts.includes(hostname.toLowerCase());
      const list = addresses;
      const refused = list.find((a) => isInternalAddress(a.address));
      if (refused && !allowed) {
        const denial = Object.assign(
          new Error(`${hostname} resolves to an internal address (${refused.address})`),
          { code: 'EWEBHOOKTARGET' },
        );
        return callback(denial, []);
      }
      if ((options as { all?: boolean }).all) return callback(null, list);
      return callback(null, list[0].address, list[0].family);
    });
  };
}
