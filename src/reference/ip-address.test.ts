import { describe, expect, it } from "vitest";
import {
  endsInNumber,
  formatIPv6,
  internalAddressReason,
  parseCanonicalIPv4,
  parseIPv6,
  parseIpAddress,
  parseLenientIPv4,
} from "./ip-address.js";

const v4 = (text: string) => [...(parseLenientIPv4(text) ?? [])].join(".");

describe("IPv4 text", () => {
  it("reads canonical dotted quads only in strict mode", () => {
    expect(parseCanonicalIPv4("127.0.0.1")).toEqual(new Uint8Array([127, 0, 0, 1]));
    for (const text of [
      "127.1",
      "0177.0.0.1",
      "127.0.0.01",
      "256.0.0.1",
      "1.2.3",
      "1.2.3.4.",
      "0x7f.0.0.1",
    ]) {
      expect(parseCanonicalIPv4(text), text).toBeUndefined();
    }
  });

  it("reads every shorthand a resolver accepts in lenient mode (WHATWG IPv4 parser)", () => {
    expect(v4("127.1")).toBe("127.0.0.1");
    expect(v4("0x7f.1")).toBe("127.0.0.1");
    expect(v4("2130706433")).toBe("127.0.0.1");
    expect(v4("017700000001")).toBe("127.0.0.1");
    expect(v4("0177.0.0.1")).toBe("127.0.0.1");
    expect(v4("127.0.0.1.")).toBe("127.0.0.1");
    expect(v4("0x")).toBe("0.0.0.0");
    expect(v4("169.254.43518")).toBe("169.254.169.254");
    expect(parseLenientIPv4("4294967296")).toBeUndefined();
    expect(parseLenientIPv4("256.1")).toBeUndefined();
    expect(parseLenientIPv4("08.1")).toBeUndefined();
    expect(parseLenientIPv4("example.com")).toBeUndefined();
  });

  it("knows a name whose last label is a number", () => {
    expect(endsInNumber("0x7f.1")).toBe(true);
    expect(endsInNumber("foo.0x10")).toBe(true);
    expect(endsInNumber("foo.123.")).toBe(true);
    expect(endsInNumber("123.example.com")).toBe(false);
    expect(endsInNumber("gcr.io")).toBe(false);
  });
});

describe("IPv6 text", () => {
  it("parses RFC 4291 forms and writes RFC 5952 text", () => {
    const canonical = (text: string) => formatIPv6(parseIPv6(text) ?? new Uint8Array(16));
    expect(canonical("0:0:0:0:0:0:0:1")).toBe("::1");
    expect(canonical("2001:0DB8:0:0:1:0:0:1")).toBe("2001:db8::1:0:0:1");
    expect(canonical("2001:db8:0:1:1:1:1:1")).toBe("2001:db8:0:1:1:1:1:1");
    expect(canonical("::ffff:7f00:1")).toBe("::ffff:127.0.0.1");
    expect(canonical("64:ff9b::127.0.0.1")).toBe("64:ff9b::7f00:1");
    expect(canonical("::")).toBe("::");
    for (const text of ["1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "::1.2.3", "fe80::1%eth0", ":1"]) {
      expect(parseIPv6(text), text).toBeUndefined();
    }
  });
});

describe("which addresses are internal", () => {
  const reason = (text: string) => {
    const address = parseIpAddress(text);
    if (!address) throw new Error(`not an address: ${text}`);
    return internalAddressReason(address);
  };

  it.each([
    "127.0.0.1",
    "127.1",
    "0x7f.1",
    "2130706433",
    "10.0.0.1",
    "172.31.255.255",
    "192.168.0.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "[::1]",
    "::",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::ffff:a9fe:a9fe",
    "::ffff:0:7f00:1",
    "::7f00:1",
    "::8.8.8.8",
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::1",
    "2002:7f00:1::",
    "2002:a9fe:a9fe::1",
    "2001::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "fec0::1",
    "ff02::1",
  ])("%s is internal", (text) => {
    expect(reason(text)).toBeDefined();
  });

  it.each([
    "8.8.8.8",
    "1.1.1.1",
    "172.32.0.1",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
  ])("%s is public", (text) => {
    expect(reason(text)).toBeUndefined();
  });

  it("says which embedded address an IPv6 form hides", () => {
    expect(reason("2002:7f00:1::")).toBe(
      "a 6to4 (2002::/16) form of 127.0.0.1, a loopback address (127.0.0.0/8)",
    );
  });
});
