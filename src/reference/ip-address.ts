/**
 * IP address literals: strict parsing of the one canonical text of an address (what a registry
 * name may use), lenient parsing of every form a resolver accepts (what an address check must
 * see through), and which addresses are not on the public internet.
 *
 * - IPv6 text: RFC 4291 section 2.2; canonical text: RFC 5952 sections 4 and 5.
 * - IPv4 shorthand (`127.1`, `0x7f.1`, `0177.0.0.1`, `2130706433`): the WHATWG URL "IPv4 parser",
 *   https://url.spec.whatwg.org/#concept-ipv4-parser, which is what inet_aton, getaddrinfo and
 *   browsers accept.
 * - Address classes: the IANA IPv4 and IPv6 special-purpose address registries
 *   (https://www.iana.org/assignments/iana-ipv4-special-registry,
 *   https://www.iana.org/assignments/iana-ipv6-special-registry) and the IPv6 forms that embed an
 *   IPv4 address: IPv4-mapped and IPv4-compatible (RFC 4291 2.5.5), IPv4-translated (RFC 2765),
 *   NAT64 (RFC 6052), 6to4 (RFC 3056).
 */

export type IpAddress =
  { readonly family: 4; readonly bytes: Uint8Array } | { readonly family: 6; readonly bytes: Uint8Array };

const CANONICAL_IPV4_PART = /^(?:0|[1-9]\d{0,2})$/;

/** `a.b.c.d` with decimal parts 0-255 without leading zeros; undefined for anything else. */
export function parseCanonicalIPv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (const [index, part] of parts.entries()) {
    if (!CANONICAL_IPV4_PART.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    bytes[index] = value;
  }
  return bytes;
}

function parseIPv4Number(part: string): number | undefined {
  if (part.length === 0) return undefined;
  let digits = part;
  let radix = 10;
  if (/^0x/i.test(part)) {
    digits = part.slice(2);
    radix = 16;
  } else if (part.length > 1 && part.startsWith("0")) {
    digits = part.slice(1);
    radix = 8;
  }
  if (digits.length === 0) return 0;
  const pattern = radix === 16 ? /^[0-9a-f]+$/i : radix === 8 ? /^[0-7]+$/ : /^\d+$/;
  if (!pattern.test(digits)) return undefined;
  const value = parseInt(digits, radix);
  return Number.isSafeInteger(value) ? value : undefined;
}

/**
 * Every IPv4 form the WHATWG URL parser and inet_aton accept: one to four dot-separated parts in
 * decimal, octal (leading 0) or hex (0x), the last one filling the remaining bytes, and an
 * optional trailing dot. Undefined for anything else.
 */
export function parseLenientIPv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length > 1 && parts.at(-1) === "") parts.pop();
  if (parts.length === 0 || parts.length > 4) return undefined;
  const numbers: number[] = [];
  for (const part of parts) {
    const value = parseIPv4Number(part);
    if (value === undefined) return undefined;
    numbers.push(value);
  }
  const last = numbers.pop() ?? 0;
  if (numbers.some((value) => value > 255)) return undefined;
  if (last >= 256 ** (4 - numbers.length)) return undefined;
  let value = last;
  for (const [index, part] of numbers.entries()) value += part * 256 ** (3 - index);
  return new Uint8Array([(value >>> 24) & 255, (value >>> 16) & 255, (value >>> 8) & 255, value & 255]);
}

/**
 * Whether a host name's last label is a number (the WHATWG "ends in a number" test): such a
 * name is an IPv4 address to every resolver, never a DNS name.
 */
export function endsInNumber(hostname: string): boolean {
  const labels = hostname.split(".");
  if (labels.length > 1 && labels.at(-1) === "") labels.pop();
  const last = labels.at(-1) ?? "";
  return /^\d+$/.test(last) || /^0x[0-9a-f]*$/i.test(last);
}

const IPV6_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseIPv6Groups(text: string, allowEmbeddedIPv4: boolean): number[] | undefined {
  if (text === "") return [];
  const groups: number[] = [];
  const parts = text.split(":");
  for (const [index, part] of parts.entries()) {
    if (allowEmbeddedIPv4 && index === parts.length - 1 && part.includes(".")) {
      const v4 = parseCanonicalIPv4(part);
      if (!v4) return undefined;
      groups.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
      continue;
    }
    if (!IPV6_GROUP.test(part)) return undefined;
    groups.push(parseInt(part, 16));
  }
  return groups;
}

/**
 * An IPv6 address in RFC 4291 text (hex groups, at most one `::`, an optional dotted IPv4
 * tail), without brackets or zone; undefined for anything else.
 */
export function parseIPv6(text: string): Uint8Array | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const head = parseIPv6Groups(halves[0] ?? "", false);
    const tail = parseIPv6Groups(halves[1] ?? "", true);
    if (!head || !tail || head.length + tail.length > 7) return undefined;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const all = parseIPv6Groups(text, true);
    if (all?.length !== 8) return undefined;
    groups = all;
  }
  const bytes = new Uint8Array(16);
  for (const [index, group] of groups.entries()) {
    bytes[index * 2] = group >> 8;
    bytes[index * 2 + 1] = group & 255;
  }
  return bytes;
}

export function formatIPv4(bytes: Uint8Array): string {
  return [...bytes.subarray(0, 4)].join(".");
}

function hasPrefix(bytes: Uint8Array, prefix: readonly number[], bits: number): boolean {
  for (let bit = 0; bit < bits; bit += 8) {
    const index = bit / 8;
    const mask = bits - bit >= 8 ? 0xff : (0xff << (8 - (bits - bit))) & 0xff;
    if (((bytes[index] ?? 0) & mask) !== ((prefix[index] ?? 0) & mask)) return false;
  }
  return true;
}

/** `::ffff:0:0/96`, written with a dotted IPv4 tail in canonical text (RFC 5952 section 5). */
const IPV4_MAPPED = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/** The RFC 5952 text of an IPv6 address: lower case, no leading zeros, the longest zero run as `::`. */
export function formatIPv6(bytes: Uint8Array): string {
  if (hasPrefix(bytes, IPV4_MAPPED, 96)) return `::ffff:${formatIPv4(bytes.subarray(12))}`;
  const groups: number[] = [];
  for (let index = 0; index < 16; index += 2)
    groups.push(((bytes[index] ?? 0) << 8) | (bytes[index + 1] ?? 0));
  let bestStart = -1;
  let bestLength = 0;
  for (let start = 0; start < 8;) {
    if (groups[start] !== 0) {
      start += 1;
      continue;
    }
    let end = start;
    while (end < 8 && groups[end] === 0) end += 1;
    if (end - start > bestLength) {
      bestStart = start;
      bestLength = end - start;
    }
    start = end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestLength < 2) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

/** An address in any text form a resolver accepts (brackets, IPv4 shorthand), or undefined. */
export function parseIpAddress(text: string): IpAddress | undefined {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (bare.includes(":")) {
    const bytes = parseIPv6(bare);
    return bytes ? { family: 6, bytes } : undefined;
  }
  const bytes = parseLenientIPv4(bare);
  return bytes ? { family: 4, bytes } : undefined;
}

interface SpecialRange {
  readonly prefix: readonly number[];
  readonly bits: number;
  readonly reason: string;
}

/**
 * IPv4 ranges that reach this machine or a private network, or are not unicast (IANA: not
 * "globally reachable"). The documentation ranges are left out: they route to the internet,
 * where nothing answers, so they are no way into a private network.
 */
const IPV4_SPECIAL: readonly SpecialRange[] = [
  { prefix: [0], bits: 8, reason: 'a "this network" address (0.0.0.0/8)' },
  { prefix: [10], bits: 8, reason: "a private address (10.0.0.0/8)" },
  { prefix: [100, 64], bits: 10, reason: "a carrier-grade NAT address (100.64.0.0/10)" },
  { prefix: [127], bits: 8, reason: "a loopback address (127.0.0.0/8)" },
  {
    prefix: [169, 254],
    bits: 16,
    reason: "a link-local address (169.254.0.0/16, where cloud metadata services answer)",
  },
  { prefix: [172, 16], bits: 12, reason: "a private address (172.16.0.0/12)" },
  { prefix: [192, 0, 0], bits: 24, reason: "an IETF protocol address (192.0.0.0/24)" },
  { prefix: [192, 88, 99], bits: 24, reason: "a 6to4 relay address (192.88.99.0/24)" },
  { prefix: [192, 168], bits: 16, reason: "a private address (192.168.0.0/16)" },
  { prefix: [198, 18], bits: 15, reason: "a benchmarking address (198.18.0.0/15)" },
  { prefix: [224], bits: 4, reason: "a multicast address (224.0.0.0/4)" },
  { prefix: [240], bits: 4, reason: "a reserved or broadcast address (240.0.0.0/4)" },
];

/** IPv6 forms that carry an IPv4 address in their last (or, for 6to4, second to fifth) bytes. */
const IPV6_EMBEDDING: readonly (SpecialRange & { readonly offset: number })[] = [
  { prefix: IPV4_MAPPED, bits: 96, offset: 12, reason: "an IPv4-mapped form" },
  {
    prefix: [0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0],
    bits: 96,
    offset: 12,
    reason: "an IPv4-translated form",
  },
  { prefix: [0, 0x64, 0xff, 0x9b], bits: 96, offset: 12, reason: "a NAT64 (64:ff9b::/96) form" },
  { prefix: [0x20, 0x02], bits: 16, offset: 2, reason: "a 6to4 (2002::/16) form" },
];

const IPV6_SPECIAL: readonly SpecialRange[] = [
  { prefix: new Array<number>(16).fill(0), bits: 128, reason: "the unspecified address (::)" },
  { prefix: [...new Array<number>(15).fill(0), 1], bits: 128, reason: "the loopback address (::1)" },
  {
    prefix: new Array<number>(12).fill(0),
    bits: 96,
    reason: "an IPv4-compatible address (::/96, deprecated; ::7f00:1 is 127.0.0.1)",
  },
  { prefix: [0, 0x64, 0xff, 0x9b, 0, 1], bits: 48, reason: "a local-use NAT64 address (64:ff9b:1::/48)" },
  { prefix: [0x01, 0], bits: 64, reason: "a discard-only address (100::/64)" },
  {
    prefix: [0x20, 0x01],
    bits: 23,
    reason: "an IETF protocol address (2001::/23, Teredo among them)",
  },
  { prefix: [0x5f, 0], bits: 16, reason: "a segment-routing address (5f00::/16)" },
  { prefix: [0xfc], bits: 7, reason: "a unique-local address (fc00::/7)" },
  { prefix: [0xfe, 0x80], bits: 10, reason: "a link-local address (fe80::/10)" },
  { prefix: [0xfe, 0xc0], bits: 10, reason: "a site-local address (fec0::/10, deprecated)" },
  { prefix: [0xff], bits: 8, reason: "a multicast address (ff00::/8)" },
];

/**
 * Why an address is not a public unicast address (loopback, private, link-local, reserved ...),
 * or undefined for a public one. An IPv6 address that embeds an IPv4 address (mapped, translated,
 * NAT64, 6to4) is judged by the address it embeds.
 */
export function internalAddressReason(address: IpAddress): string | undefined {
  if (address.family === 4) {
    return IPV4_SPECIAL.find((range) => hasPrefix(address.bytes, range.prefix, range.bits))?.reason;
  }
  for (const form of IPV6_EMBEDDING) {
    if (!hasPrefix(address.bytes, form.prefix, form.bits)) continue;
    const embedded = address.bytes.subarray(form.offset, form.offset + 4);
    const reason = internalAddressReason({ family: 4, bytes: embedded });
    return reason === undefined ? undefined : `${form.reason} of ${formatIPv4(embedded)}, ${reason}`;
  }
  return IPV6_SPECIAL.find((range) => hasPrefix(address.bytes, range.prefix, range.bits))?.reason;
}

/** Whether two addresses are the same (same family and bytes). */
export function sameIpAddress(a: IpAddress, b: IpAddress): boolean {
  return (
    a.family === b.family &&
    a.bytes.length === b.bytes.length &&
    a.bytes.every((byte, i) => byte === b.bytes[i])
  );
}
