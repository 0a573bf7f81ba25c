import { lookup as dnsLookup } from "node:dns/promises";
import type { LookupAddress, LookupOptions } from "node:dns";
import { isIP } from "node:net";
import {
  foldHostCase,
  internalAddressReason,
  internalHostReason,
  parseIpAddress,
  sameIpAddress,
  splitRegistryHost,
  type IpAddress,
} from "../../reference/index.js";

/**
 * Addresses that belong to this machine or a private network: loopback, private, carrier-grade
 * NAT, link-local (cloud metadata services live at 169.254.169.254), unique-local IPv6, "this
 * network", multicast and reserved ranges, in every spelling (IPv4 shorthand such as `127.1` or
 * `0x7f.1`, and the IPv6 forms that embed an IPv4 address: mapped, compatible, translated, NAT64,
 * 6to4). The classification itself is pure and lives in src/reference/ip-address.ts; this module
 * applies it to resolved addresses: a public registry has no business sending a client's
 * credentials there (a token realm pointing at one is a server-side request forgery attempt),
 * and a registry name from a manifest must not reach one unless the operator allowed it.
 */

/** Why an IP address (v4 or v6, any text form, brackets and zone allowed) is internal, or undefined. */
export function internalAddressProblem(address: string): string | undefined {
  const unbracketed = address.replace(/^\[|\]$/g, "");
  // A zone (fe80::1%eth0) is only ever given to scoped, link-local addresses.
  if (unbracketed.includes("%")) return "a scoped (link-local) IPv6 address";
  const parsed = parseIpAddress(unbracketed);
  return parsed === undefined ? undefined : internalAddressReason(parsed);
}

/** Whether an IP address (v4, v6 or v4-mapped v6) is loopback, private, link-local or otherwise not public. */
export function isInternalAddress(address: string): boolean {
  return internalAddressProblem(address) !== undefined;
}

/** Resolves a host name to its addresses (IP literals resolve to themselves). */
export type HostResolver = (hostname: string) => Promise<string[]>;

/** A resolver that answers from `overrides` first (see UndiciTransportOptions.hostAddresses), then DNS. */
export function createHostResolver(overrides: ReadonlyMap<string, string> = new Map()): HostResolver {
  return async (hostname) => {
    const name = foldHostCase(hostname.replace(/^\[|\]$/g, ""));
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

/**
 * Which connections to internal addresses are refused. The library default is none (the
 * promoter's own tests and embedders talk to local registries); the CLI refuses every internal
 * address except on the hosts the operator allowed (`--allow-registry`, docs/registries.md).
 */
export interface InternalAddressPolicy {
  readonly refuse: boolean;
  /**
   * Hosts that may be internal: `HOST` (any port) or `HOST:PORT`, IPv6 in brackets. A DNS name is
   * checked when it resolves, where the port is not known: a `HOST:PORT` entry allows the name on
   * every port there.
   */
  readonly allowed: readonly string[];
}

/** The error code of a refused connection (never retried). */
export const INTERNAL_ADDRESS_ERROR_CODE = "ERR_INTERNAL_ADDRESS";

/** Hosts whose answer `refusal` remembers. */
const MAX_REMEMBERED_HOSTS = 1024;
/** What `refusal` remembers for a host it lets through. */
const ALLOWED = "";

interface AllowedHost {
  readonly name: string;
  readonly address: IpAddress | undefined;
  readonly port: string | undefined;
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** A `lookup` as net.connect and tls.connect take it. */
export type ConnectLookup = (hostname: string, options: LookupOptions, callback: LookupCallback) => void;

/**
 * Applies an InternalAddressPolicy where connections are made: to an IP literal before the
 * request is sent (no resolver is asked for those), and to a DNS name on every answer of the
 * resolver that the connection then uses (so a name that resolves to a public address once and
 * to an internal one the next time is caught where it matters).
 */
export class InternalAddressGuard {
  private readonly allowed: readonly AllowedHost[];
  /** `refusal`'s answers by URL host (`name[:port]`); ALLOWED for none. */
  private readonly refusals = new Map<string, string>();

  constructor(private readonly policy: InternalAddressPolicy) {
    this.allowed = policy.allowed.map((entry) => {
      const { hostname, port } = splitRegistryHost(foldHostCase(entry.trim()));
      return { name: hostname, address: parseIpAddress(hostname), port };
    });
  }

  private allows(hostname: string, port: string | undefined): boolean {
    const name = foldHostCase(hostname.replace(/^\[|\]$/g, ""));
    const address = parseIpAddress(name);
    return this.allowed.some(
      (entry) =>
        (entry.port === undefined || port === undefined || entry.port === port) &&
        (address !== undefined && entry.address !== undefined
          ? sameIpAddress(address, entry.address)
          : entry.name === name),
    );
  }

  /** Why a request to `url` must not be sent (an internal IP literal or name not allowed), or undefined. */
  refusal(url: URL): string | undefined {
    if (!this.policy.refuse) return undefined;
    // The answer depends on the host and port alone: asked once per host, not per request
    // (parsing the address cost more than the rest of the check; issue 15).
    const known = this.refusals.get(url.host);
    if (known !== undefined) return known === ALLOWED ? undefined : known;
    const port = url.port === "" ? undefined : url.port;
    const reason = this.allows(url.hostname, port) ? undefined : internalHostReason(url.hostname);
    const refusal =
      reason === undefined
        ? undefined
        : `refusing to connect to ${url.host}: it is ${reason}; only registries allowed with --allow-registry may be on this machine or a private network`;
    // Bounded: redirects name hosts the manifests do not.
    if (this.refusals.size < MAX_REMEMBERED_HOSTS) this.refusals.set(url.host, refusal ?? ALLOWED);
    return refusal;
  }

  /** Wraps a lookup so that an answer with an internal address for a name not allowed fails the connection. */
  lookup(base: ConnectLookup): ConnectLookup {
    if (!this.policy.refuse) return base;
    return (hostname, options, callback) => {
      if (this.allows(hostname, undefined)) {
        base(hostname, options, callback);
        return;
      }
      base(hostname, { ...options, all: true }, (error, answer) => {
        if (error) {
          callback(error, options.all ? [] : "");
          return;
        }
        const addresses = typeof answer === "string" ? [{ address: answer, family: isIP(answer) }] : answer;
        for (const { address } of addresses) {
          const reason = internalAddressProblem(address);
          if (reason === undefined) continue;
          const refused: NodeJS.ErrnoException = new Error(
            `refusing to connect to ${hostname}: it resolves to ${address}, ${reason}; only registries allowed with --allow-registry may be on this machine or a private network`,
          );
          refused.code = INTERNAL_ADDRESS_ERROR_CODE;
          callback(refused, options.all ? [] : "");
          return;
        }
        const [first] = addresses;
        if (options.all) callback(null, addresses);
        else callback(null, first?.address ?? "", first?.family);
      });
    };
  }
}
