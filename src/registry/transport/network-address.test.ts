import type { LookupAddress, LookupOptions } from "node:dns";
import { describe, expect, it } from "vitest";
import {
  INTERNAL_ADDRESS_ERROR_CODE,
  InternalAddressGuard,
  internalAddressProblem,
  isInternalAddress,
  type ConnectLookup,
} from "./network-address.js";

/** A resolver that answers from a table, as DNS would. */
function table(answers: Record<string, string[]>): ConnectLookup {
  return (hostname, options, callback) => {
    const addresses = answers[hostname];
    if (!addresses) {
      const error: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
      error.code = "ENOTFOUND";
      callback(error, "");
      return;
    }
    const list: LookupAddress[] = addresses.map((address) => ({
      address,
      family: address.includes(":") ? 6 : 4,
    }));
    if (options.all) callback(null, list);
    else callback(null, list[0]?.address ?? "", list[0]?.family);
  };
}

function resolveWith(lookup: ConnectLookup, hostname: string, options: LookupOptions = {}) {
  return new Promise<{ error: NodeJS.ErrnoException | null; address: string | LookupAddress[] }>(
    (resolve) => {
      lookup(hostname, options, (error, address) => {
        resolve({ error, address });
      });
    },
  );
}

describe("internal addresses", () => {
  it("sees through every spelling, zone and bracket", () => {
    for (const address of [
      "127.0.0.1",
      "[::1]",
      "::ffff:127.0.0.1",
      "::7f00:1",
      "64:ff9b::7f00:1",
      "2002:7f00:1::",
      "fe80::1%eth0",
      "0x7f.1",
    ]) {
      expect(isInternalAddress(address), address).toBe(true);
    }
    expect(isInternalAddress("8.8.8.8")).toBe(false);
    expect(internalAddressProblem("not-an-address")).toBeUndefined();
  });
});

describe("InternalAddressGuard", () => {
  const dns = table({
    "registry.example.com": ["93.184.216.34"],
    "rebinding.example.com": ["93.184.216.34", "127.0.0.1"],
    "internal.example.com": ["10.0.0.5"],
  });

  it("refuses a DNS answer with an internal address, whichever answer it is", async () => {
    const guard = new InternalAddressGuard({ refuse: true, allowed: [] });
    const lookup = guard.lookup(dns);
    const ok = await resolveWith(lookup, "registry.example.com");
    expect(ok.error).toBeNull();
    expect(ok.address).toBe("93.184.216.34");
    for (const name of ["rebinding.example.com", "internal.example.com"]) {
      const refused = await resolveWith(lookup, name, { all: true });
      expect(refused.error?.code).toBe(INTERNAL_ADDRESS_ERROR_CODE);
      expect(refused.error?.message).toContain(`refusing to connect to ${name}: it resolves to`);
    }
    expect((await resolveWith(lookup, "missing.example.com")).error?.code).toBe("ENOTFOUND");
  });

  it("lets the hosts the operator allowed resolve anywhere", async () => {
    const guard = new InternalAddressGuard({ refuse: true, allowed: ["internal.example.com:5000"] });
    const answer = await resolveWith(guard.lookup(dns), "internal.example.com");
    expect(answer.error).toBeNull();
    expect(answer.address).toBe("10.0.0.5");
  });

  it("refuses internal IP literals and names before a request, except those allowed (by address and port)", () => {
    const guard = new InternalAddressGuard({
      refuse: true,
      allowed: ["127.0.0.1:5000", "[::1]", "registry.test"],
    });
    const refusal = (url: string) => guard.refusal(new URL(url));
    expect(refusal("http://127.0.0.1:5000/v2/")).toBeUndefined();
    expect(refusal("http://127.0.0.1:5001/v2/")).toMatch(
      /^refusing to connect to 127\.0\.0\.1:5001: it is a loopback address/,
    );
    expect(refusal("http://[::ffff:127.0.0.1]:5001/v2/")).toMatch(/an IPv4-mapped form of 127\.0\.0\.1/);
    expect(refusal("http://[::1]:9/v2/")).toBeUndefined();
    expect(refusal("http://registry.test:1/v2/")).toBeUndefined();
    expect(refusal("http://localhost:5000/v2/")).toMatch(/it is localhost/);
    expect(refusal("http://169.254.169.254/latest")).toMatch(/link-local/);
    expect(refusal("https://gcr.io/v2/")).toBeUndefined();
  });

  it("changes nothing when the policy does not refuse", () => {
    const guard = new InternalAddressGuard({ refuse: false, allowed: [] });
    expect(guard.refusal(new URL("http://127.0.0.1/"))).toBeUndefined();
    expect(guard.lookup(dns)).toBe(dns);
  });
});
