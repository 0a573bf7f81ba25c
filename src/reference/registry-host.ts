import {
  endsInNumber,
  formatIPv4,
  formatIPv6,
  internalAddressReason,
  parseCanonicalIPv4,
  parseIPv6,
  parseIpAddress,
  parseLenientIPv4,
} from "./ip-address.js";
import { foldHostCase, registryHostProblem, type RegistryHost } from "./name.js";

/**
 * What a registry host in a promotion manifest may look like, and whether it is on this machine
 * or a private network. Pure: no resolver is asked (the transport checks resolved addresses at
 * connect time, src/registry/transport/network-address.ts).
 *
 * A manifest names each registry in one canonical spelling, so that two spellings can never name
 * the same place past a rule that compares names (an allow-list, ownership, "the source is not a
 * destination"), and so that a resolver's lenient forms (`127.1`, `0x7f.1`, `[::ffff:7f00:1]`)
 * cannot hide an internal address.
 */

/** The longest DNS name (RFC 1035 2.3.4, without the trailing dot) and label. */
export const MAX_DNS_NAME_LENGTH = 253;
export const MAX_DNS_LABEL_LENGTH = 63;

/** `host`, `port` (undefined when absent) and whether the host is an IPv6 literal, of `host[:port]`. */
export function splitRegistryHost(host: string): {
  hostname: string;
  port: string | undefined;
  ipv6: boolean;
} {
  if (host.startsWith("[")) {
    const close = host.indexOf("]");
    const rest = host.slice(close + 1);
    return {
      hostname: host.slice(1, close),
      port: rest.startsWith(":") ? rest.slice(1) : undefined,
      ipv6: true,
    };
  }
  const colon = host.lastIndexOf(":");
  return colon < 0
    ? { hostname: host, port: undefined, ipv6: false }
    : { hostname: host.slice(0, colon), port: host.slice(colon + 1), ipv6: false };
}

/**
 * Why `host` (`name[:port]`) is not a registry host in its canonical spelling, or undefined:
 * the grammar of `registryHostProblem`, and lower case, a port from 1 to 65535 without leading
 * zeros, an IPv4 address as four decimal numbers without leading zeros (a name whose last label
 * is a number is an IPv4 address to every resolver), an IPv6 address in RFC 5952 text, DNS
 * label and name lengths.
 */
export function canonicalRegistryHostProblem(host: string): string | undefined {
  const problem = registryHostProblem(host);
  if (problem) return problem;
  const { hostname, port, ipv6 } = splitRegistryHost(host);
  if (port !== undefined && (port.startsWith("0") || Number(port) === 0)) {
    return `port ${JSON.stringify(port)} is not in canonical form: write a number from 1 to 65535 without leading zeros`;
  }
  if (ipv6) {
    const bytes = parseIPv6(hostname);
    if (!bytes) return `${JSON.stringify(`[${hostname}]`)} is not an IPv6 address`;
    const canonical = formatIPv6(bytes);
    if (canonical !== hostname) {
      return `write the IPv6 address [${hostname}] in its canonical form [${canonical}] (RFC 5952)`;
    }
    return undefined;
  }
  if (hostname !== foldHostCase(hostname)) {
    return `write the host ${JSON.stringify(hostname)} in lower case (${JSON.stringify(foldHostCase(hostname))})`;
  }
  if (endsInNumber(hostname)) {
    if (parseCanonicalIPv4(hostname)) return undefined;
    const lenient = parseLenientIPv4(hostname);
    return lenient
      ? `${JSON.stringify(hostname)} is the IPv4 address ${formatIPv4(lenient)} in a shorthand form: write four decimal numbers without leading zeros`
      : `${JSON.stringify(hostname)} ends in a number but is not an IPv4 address`;
  }
  if (hostname.length > MAX_DNS_NAME_LENGTH)
    return `the host name is longer than ${MAX_DNS_NAME_LENGTH} characters`;
  const long = hostname.split(".").find((label) => label.length > MAX_DNS_LABEL_LENGTH);
  if (long !== undefined)
    return `the label ${JSON.stringify(long)} is longer than ${MAX_DNS_LABEL_LENGTH} characters`;
  return undefined;
}

/**
 * Top-level names that are never public DNS: reserved by RFC 2606 and RFC 6761 (`test`,
 * `invalid`, `example`, `localhost`), mDNS (`local`, RFC 6762), ICANN's private-use `internal`,
 * `home.arpa` (RFC 8375), and the private names RFC 6762 appendix G lists as common.
 */
const PRIVATE_SUFFIXES = [
  "localhost",
  "local",
  "internal",
  "home.arpa",
  "test",
  "invalid",
  "example",
  "localdomain",
  "lan",
  "intranet",
  "corp",
  "private",
  "home",
];

/**
 * Why a registry host is (or names) something on this machine or a private network, or
 * undefined when it is a public address or a public-looking DNS name: an internal IP literal in
 * any spelling (see ip-address.ts), `localhost`, a single-label name (resolved through the
 * machine's hosts file and search domains), or a name under a private top-level name. A public
 * DNS name can still resolve to an internal address: that is checked at connect time.
 */
export function internalHostReason(host: RegistryHost | string): string | undefined {
  // A bare IPv6 address (two colons or more, no brackets) has no port.
  const bareIPv6 = !host.startsWith("[") && host.indexOf(":") !== host.lastIndexOf(":");
  const raw = bareIPv6 ? host : splitRegistryHost(host).hostname;
  const hostname = foldHostCase(raw).replace(/\.$/, "");
  const address = parseIpAddress(hostname.includes(":") ? hostname.replace(/%.*$/, "") : hostname);
  if (address) return internalAddressReason(address);
  if (hostname.includes("%")) return "a scoped (link-local) IPv6 address";
  if (!hostname.includes(".")) {
    return hostname === "localhost"
      ? "localhost"
      : "a single-label name (resolved through this machine's hosts file and search domains)";
  }
  const suffix = PRIVATE_SUFFIXES.find((name) => hostname === name || hostname.endsWith(`.${name}`));
  return suffix === undefined ? undefined : `a name under .${suffix}, which is not public DNS`;
}

/**
 * Google's registries: Container Registry (`gcr.io`, `*.gcr.io`) and Artifact Registry
 * (`REGION-docker.pkg.dev`), with or without a port. Their tags listing carries the
 * `manifest` map, and they take Google's credentials.
 */
export function isGoogleRegistryHost(host: string): boolean {
  const name = splitRegistryHost(host).hostname.toLowerCase();
  return name === "gcr.io" || name.endsWith(".gcr.io") || /^[a-z0-9-]+-docker\.pkg\.dev$/.test(name);
}
