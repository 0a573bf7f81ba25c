import { lookup as dnsLookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";

/**
 * Addresses that belong to this machine or a private network: loopback, RFC 1918 private,
 * carrier-grade NAT, link-local (cloud metadata services live at 169.254.169.254), unique-local
 * IPv6, and "this network". A public registry has no business sending a client's credentials
 * there (a token realm pointing at one is a server-side request forgery attempt).
 */
const INTERNAL_ADDRESSES = new BlockList();
INTERNAL_ADDRESSES.addSubnet("0.0.0.0", 8, "ipv4");
INTERNAL_ADDRESSES.addSubnet("10.0.0.0", 8, "ipv4");
INTERNAL_ADDRESSES.addSubnet("100.64.0.0", 10, "ipv4");
INTERNAL_ADDRESSES.addSubnet("127.0.0.0", 8, "ipv4");
INTERNAL_ADDRESSES.addSubnet("169.254.0.0", 16, "ipv4");
INTERNAL_ADDRESSES.addSubnet("172.16.0.0", 12, "ipv4");
INTERNAL_ADDRESSES.addSubnet("192.168.0.0", 16, "ipv4");
INTERNAL_ADDRESSES.addAddress("::", "ipv6");
INTERNAL_ADDRESSES.addAddress("::1", "ipv6");
INTERNAL_ADDRESSES.addSubnet("fc00::", 7, "ipv6");
INTERNAL_ADDRESSES.addSubnet("fe80::", 10, "ipv6");

/** Whether an IP address (v4, v6 or v4-mapped v6) is loopback, private or link-local. */
export function isInternalAddress(address: string): boolean {
  const unbracketed = address.replace(/^\[|\]$/g, "");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(unbracketed);
  if (mapped?.[1] !== undefined) return INTERNAL_ADDRESSES.check(mapped[1], "ipv4");
  const family = isIP(unbracketed);
  if (family === 4) return INTERNAL_ADDRESSES.check(unbracketed, "ipv4");
  if (family === 6) return INTERNAL_ADDRESSES.check(unbracketed, "ipv6");
  return false;
}

/** Resolves a host name to its addresses (IP literals resolve to themselves). */
export type HostResolver = (hostname: string) => Promise<string[]>;

/** A resolver that answers from `overrides` first (see UndiciTransportOptions.hostAddresses), then DNS. */
export function createHostResolver(overrides: ReadonlyMap<string, string> = new Map()): HostResolver {
  return async (hostname) => {
    const name = hostname.replace(/^\[|\]$/g, "").toLowerCase();
    if (isIP(name) !== 0) return [name];
    const pinned = overrides.get(name);
    if (pinned !== undefined) return [pinned];
    if (name === "localhost" || name.endsWith(".localhost")) return ["127.0.0.1", "::1"];
    const answers = await dnsLookup(name, { all: true });
    return answers.map((answer) => answer.address);
  };
}

/** Whether a host name resolves to any internal address (unresolvable names are not internal). */
export async function isInternalHost(hostname: string, resolve: HostResolver): Promise<boolean> {
  let addresses: string[];
  try {
    addresses = await resolve(hostname);
  } catch {
    return false;
  }
  return addresses.some(isInternalAddress);
}
