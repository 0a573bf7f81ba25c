import { describe, expect, it } from "vitest";
import { canonicalRegistryHostProblem, internalHostReason } from "./registry-host.js";
import { registryLocationProblem } from "./reference.js";

describe("canonical registry hosts", () => {
  it.each([
    "gcr.io",
    "us-central1-docker.pkg.dev",
    "registry.example.com:5000",
    "127.0.0.1:5000",
    "8.8.8.8",
    "[::1]:5000",
    "[2001:db8::1]",
    "[::ffff:127.0.0.1]",
    "localhost",
    "xn--bcher-kva.example",
  ])("%s is canonical", (host) => {
    expect(canonicalRegistryHostProblem(host)).toBeUndefined();
  });

  it.each([
    ["Registry.Example.com", /lower case/],
    ["LOCALHOST:5000", /lower case/],
    ["registry.example.com:00443", /leading zeros/],
    ["registry.example.com:0", /1 to 65535/],
    ["registry.example.com:65536", /0 to 65535/],
    ["127.1", /shorthand form/],
    ["0x7f.1:5000", /127\.0\.0\.1 in a shorthand form/],
    ["2130706433", /shorthand/],
    ["0177.0.0.1", /shorthand/],
    ["127.0.0.01", /shorthand/],
    ["999.1.1.1", /ends in a number but is not an IPv4 address/],
    ["[0:0:0:0:0:0:0:1]", /canonical form \[::1\]/],
    ["[::FFFF:7F00:1]", /canonical form \[::ffff:127\.0\.0\.1\]/],
    ["[::ffff:7f00:1]", /canonical form \[::ffff:127\.0\.0\.1\]/],
    ["[fe80::1%eth0]", /IPv6/],
    ["user@registry.example.com", /not a host name/],
    ["registry.example.com.", /not a host name/],
    [`${"a".repeat(64)}.example.com`, /longer than 63/],
  ])("%s is refused", (host, message) => {
    expect(canonicalRegistryHostProblem(host)).toMatch(message);
  });

  it("is what a manifest's registry names must satisfy", () => {
    expect(registryLocationProblem("Gcr.io/k8s-staging-foo")).toMatch(/lower case/);
    expect(registryLocationProblem("127.1:5000/staging")).toMatch(/shorthand/);
    expect(registryLocationProblem("gcr.io/k8s-staging-foo")).toBeUndefined();
  });
});

describe("internal registry hosts", () => {
  it.each([
    "127.0.0.1:5000",
    "[::1]:5000",
    "[::ffff:127.0.0.1]",
    "169.254.169.254",
    "10.1.2.3",
    "localhost:5000",
    "registry.localhost",
    "metadata",
    "metadata:80",
    "metadata.google.internal",
    "printer.local",
    "registry.test",
    "router.home.arpa",
    "0x7f.1",
    "::1",
  ])("%s is internal", (host) => {
    expect(internalHostReason(host)).toBeDefined();
  });

  it.each([
    "gcr.io",
    "registry.example.com:5000",
    "8.8.8.8",
    "[2001:4860:4860::8888]:443",
    "test.example.com",
  ])("%s is public", (host) => {
    expect(internalHostReason(host)).toBeUndefined();
  });
});
