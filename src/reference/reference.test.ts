import { describe, expect, it } from "vitest";
import {
  digestOf,
  DigestVerifier,
  formatImageReference,
  formatRepositoryLocation,
  isDigest,
  isLoopbackHost,
  isRepositoryPath,
  isTag,
  parseDigest,
  parseImageReference,
  parseRegistryHost,
  parseRegistryLocation,
  parseRepositoryPath,
  parseTag,
  registryLocationProblem,
  repositoryIn,
  tagProblem,
  type Digest,
} from "./index.js";

const HEX64 = "a".repeat(64);

describe("digest", () => {
  it.each([
    [`sha256:${HEX64}`, true],
    [`sha512:${"0123456789abcdef".repeat(8)}`, true],
    [`sha256:${"A".repeat(64)}`, false],
    [`sha256:${"a".repeat(63)}`, false],
    [`sha256:${"a".repeat(65)}`, false],
    [`sha512:${HEX64}`, false],
    [`md5:${"a".repeat(32)}`, false],
    [HEX64, false],
    ["", false],
    [`sha256:${"g".repeat(64)}`, false],
    [` sha256:${HEX64}`, false],
  ])("%s valid=%s", (input, valid) => {
    expect(isDigest(input)).toBe(valid);
    if (valid) expect(parseDigest(input)).toBe(input);
    else expect(() => parseDigest(input)).toThrow(/invalid digest/);
  });

  it("explains the problem", () => {
    expect(() => parseDigest(`sha256:${"A".repeat(64)}`)).toThrow(/lower-case/);
    expect(() => parseDigest(`sha256:${"a".repeat(10)}`)).toThrow(/needs 64 hex digits, found 10/);
    expect(() => parseDigest(`sha1:${"a".repeat(40)}`)).toThrow(/unsupported algorithm/);
  });

  it("computes and verifies digests incrementally", () => {
    const whole = digestOf("hello world");
    expect(whole).toBe("sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
    const verifier = new DigestVerifier(whole);
    verifier.update(Buffer.from("hello "));
    verifier.update(Buffer.from("world"));
    expect(verifier.finish()).toBe(whole);
    expect(verifier.bytesSeen).toBe(11);
    expect(digestOf("x", "sha512")).toMatch(/^sha512:[0-9a-f]{128}$/);
  });
});

describe("tag (kpromo cases)", () => {
  it.each(["a", "_", "_____----hello........", "A".repeat(128), "v1.2.3-rc.0", "3.10", "latest"])(
    "valid %s",
    (tag) => {
      expect(isTag(tag)).toBe(true);
      expect(parseTag(tag)).toBe(tag);
    },
  );
  it.each(["", ".", "-", "über", "a b", "a".repeat(129), ".a", "-a", "a/b", "a:b", "a@b"])(
    "invalid %j",
    (tag) => {
      expect(isTag(tag)).toBe(false);
      expect(tagProblem(tag)).toBeTruthy();
      expect(() => parseTag(tag)).toThrow(/invalid tag/);
    },
  );
});

describe("repository path", () => {
  it.each(["a", "foo/bar", "a.b/c_d/e__f/g---h", "k8s-staging-kubernetes/pause", "0/1"])(
    "valid %s",
    (path) => {
      expect(isRepositoryPath(path)).toBe(true);
      expect(parseRepositoryPath(path)).toBe(path);
    },
  );
  it.each([
    "",
    "Foo",
    "foo//bar",
    "/foo",
    "foo/",
    "foo_",
    "-foo",
    "foo...bar",
    "foo___bar",
    "a b",
    "a".repeat(256),
  ])("invalid %j", (path) => {
    expect(isRepositoryPath(path)).toBe(false);
    expect(() => parseRepositoryPath(path)).toThrow(/invalid repository/);
  });
});

describe("registry host", () => {
  it.each(["gcr.io", "localhost", "localhost:5000", "127.0.0.1:5000", "[::1]", "[::1]:5000"])(
    "valid %s",
    (host) => {
      expect(parseRegistryHost(host)).toBe(host);
    },
  );
  it("folds a host to lower case: a RegistryHost is lower case by construction", () => {
    expect(parseRegistryHost("Example.COM:5000")).toBe("example.com:5000");
    expect(parseRegistryHost("[::ABCD]")).toBe("[::abcd]");
  });
  it.each(["", "-a.io", "a..io", "[::1", "[::1]x", "host:port", "host:70000", "a_b.io"])(
    "invalid %j",
    (host) => {
      expect(() => parseRegistryHost(host)).toThrow(/invalid registry/);
    },
  );
  it("knows loopback hosts", () => {
    expect(isLoopbackHost("127.0.0.1:5000")).toBe(true);
    expect(isLoopbackHost("127.10.0.3")).toBe(true);
    expect(isLoopbackHost("localhost:1")).toBe(true);
    expect(isLoopbackHost("[::1]:5000")).toBe(true);
    expect(isLoopbackHost("gcr.io")).toBe(false);
    expect(isLoopbackHost("10.0.0.1")).toBe(false);
    expect(isLoopbackHost("127.example.com")).toBe(false);
  });
});

describe("image reference", () => {
  const digest = `sha256:${HEX64}` as Digest;
  it.each([
    ["ubuntu", "docker.io", "library/ubuntu", undefined, undefined],
    ["ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", undefined],
    ["library/ubuntu", "docker.io", "library/ubuntu", undefined, undefined],
    ["docker.io/ubuntu", "docker.io", "library/ubuntu", undefined, undefined],
    ["index.docker.io/foo/bar", "docker.io", "foo/bar", undefined, undefined],
    ["foo/bar", "docker.io", "foo/bar", undefined, undefined],
    ["gcr.io/k8s-staging/pause:3.9", "gcr.io", "k8s-staging/pause", "3.9", undefined],
    ["localhost:5000/foo", "localhost:5000", "foo", undefined, undefined],
    ["localhost/foo:1", "localhost", "foo", "1", undefined],
    ["127.0.0.1:5000/a/b/c:t@" + digest, "127.0.0.1:5000", "a/b/c", "t", digest],
    ["[::1]:5000/foo@" + digest, "[::1]:5000", "foo", undefined, digest],
    ["[2001:db8::1]/foo:bar", "[2001:db8::1]", "foo", "bar", undefined],
    // Host names are case-insensitive: a RegistryHost is folded to lower case.
    ["Example.com/foo", "example.com", "foo", undefined, undefined],
  ])("%s", (input, registry, repository, tag, dig) => {
    const ref = parseImageReference(input);
    expect(ref.registry).toBe(registry);
    expect(ref.repository).toBe(repository);
    expect(ref.tag).toBe(tag);
    expect(ref.digest).toBe(dig);
  });

  it("round-trips through format", () => {
    expect(formatImageReference(parseImageReference("ubuntu:22.04"))).toBe("docker.io/library/ubuntu:22.04");
    expect(formatImageReference(parseImageReference(`gcr.io/a/b:c@${digest}`))).toBe(
      `gcr.io/a/b:c@${digest}`,
    );
  });

  it.each([
    "",
    "foo/Bar",
    "UPPER",
    "foo:",
    "foo@sha256:abc",
    "gcr.io/",
    "gcr.io//a",
    "foo:bad tag",
    `a/${"b".repeat(260)}`,
  ])("rejects %j", (input) => {
    expect(() => parseImageReference(input)).toThrow(/invalid reference/);
  });
});

describe("registry location", () => {
  it("parses remote names with a prefix", () => {
    const loc = parseRegistryLocation("us-docker.pkg.dev/k8s-artifacts-prod/images");
    expect(loc).toEqual({
      kind: "remote",
      host: "us-docker.pkg.dev",
      prefix: "k8s-artifacts-prod/images",
      name: "us-docker.pkg.dev/k8s-artifacts-prod/images",
    });
    const repo = repositoryIn(loc, parseRepositoryPath("kube-proxy"));
    expect(formatRepositoryLocation(repo)).toBe("us-docker.pkg.dev/k8s-artifacts-prod/images/kube-proxy");
  });

  it("parses a bare host and a loopback port", () => {
    const loc = parseRegistryLocation("127.0.0.1:5000");
    expect(loc).toMatchObject({ kind: "remote", host: "127.0.0.1:5000", prefix: "" });
    expect(formatRepositoryLocation(repositoryIn(loc, parseRepositoryPath("a/b")))).toBe(
      "127.0.0.1:5000/a/b",
    );
  });

  it("parses OCI layout directories", () => {
    const loc = parseRegistryLocation("oci:./mirror-a/");
    expect(loc).toEqual({ kind: "oci-layout", directory: "./mirror-a/", name: "oci:./mirror-a/" });
    expect(formatRepositoryLocation(repositoryIn(loc, parseRepositoryPath("foo/bar")))).toBe(
      "oci:./mirror-a/foo/bar",
    );
  });

  it.each([
    ["", /empty/],
    ["oci:", /needs a directory/],
    ["myorg/images", /not a registry host/],
    ["gcr.io/", /cannot end with/],
    ["gcr.io/Foo", /upper-case/],
    ["gcr.io//foo", /empty path component/],
    ["https://gcr.io/foo", /has no scheme: write "gcr.io\/foo", not "https:\/\/gcr.io\/foo"/],
    ["docker://127.0.0.1:5000", /has no scheme: write "127.0.0.1:5000"/],
  ])("rejects %j", (name, reason) => {
    expect(registryLocationProblem(name)).toMatch(reason);
    expect(() => parseRegistryLocation(name)).toThrow(/invalid registry/);
  });
});
