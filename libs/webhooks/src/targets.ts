import ipaddr from 'ipaddr.js';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';

/** IPv6's global unicast space: every other IPv6 address is special, unallocated or local. */
const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');

/**
 * True for an address a webhook may reach without being allow-listed (WEBHOOK_ALLOW_HOSTS): a
 * globally routable unicast address, by the IANA special-purpose registries as ipaddr.js keeps
 * them. Anything else would let a user make the worker call what is behind the firewall (SSRF),
 * in whatever spelling: loopback, private, shared (100.64/10), link-local, documentation and
 * benchmarking ranges, multicast, reserved; and in IPv6 everything outside 2000::/3 (the
 * IPv4-compatible `::7f00:1` among it) and the transition forms inside it that embed an IPv4
 * address (NAT64 `64:ff9b::/96`, 6to4 `2002::/16`, Teredo `2001::/32`), which a gateway would
 * turn into an internal one. An IPv4-mapped address (`::ffff:10.0.0.1`) is judged as its IPv4.
 * Not an address at all: false.
 */
export function isGlobalAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  }
  if (parsed.kind() === 'ipv4') return parsed.range() === 'unicast';
  return parsed.range() === 'unicast' && parsed.match(GLOBAL_UNICAST_V6);
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
  // The URL parser has already written every IPv4 spelling (`2130706433`, `0x7f.1`) as a
  // dotted quad, and IPv6 in its short form.
  const host = hostOf(parsed);
  if (allowHosts.includes(host)) return undefined;
  if (host === 'localhost' || host.endsWith('.localhost')) return 'must not be a loopback host';
  if (isIP(host) !== 0 && !isGlobalAddress(host)) {
    return 'must be a globally routable address (not loopback, private, link-local or reserved)';
  }
  return undefined;
}

/**
 * The URL's host as compared with the allow-list: lower case, IPv6 without brackets, and without
 * the trailing dot of a fully qualified name (`localhost.` is `localhost`).
 */
export function hostOf(url: URL): string {
  return url.hostname
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.+$/, '');
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
      const allowed = allowHosts.includes(hostname.toLowerCase().replace(/\.+$/, ''));
      const list = addresses;
      const refused = list.find((a) => !isGlobalAddress(a.address));
      if (refused && !allowed) {
        const denial = Object.assign(
          new Error(`${hostname} resolves to an address that is not global (${refused.address})`),
          { code: 'EWEBHOOKTARGET' },
        );
        return callback(denial, []);
      }
      if ((options as { all?: boolean }).all) return callback(null, list);
      return callback(null, list[0].address, list[0].family);
    });
  };
}
