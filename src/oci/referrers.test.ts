import { describe, expect, it } from "vitest";
import { digestOf, parseDigest } from "../reference/index.js";
import { referrersFallbackSubject, referrersFallbackTag } from "./referrers.js";

describe("the referrers fallback tag", () => {
  const subject = digestOf("subject");

  it("is <alg>-<hex> and reads back to its subject", () => {
    const tag = referrersFallbackTag(subject);
    expect(tag).toBe(`sha256-${subject.slice("sha256:".length)}`);
    expect(referrersFallbackSubject(tag)).toBe(subject);
  });

  it("cuts a longer digest to 64 characters, which names no subject when read back", () => {
    const long = parseDigest(`sha512:${"ab".repeat(64)}`);
    const tag = referrersFallbackTag(long);
    expect(tag).toBe(`sha512-${"ab".repeat(32)}`);
    expect(referrersFallbackSubject(tag)).toBeUndefined();
  });

  it.each([
    ["a cosign signature tag", `${referrersFallbackTag(digestOf("x"))}.sig`],
    ["upper-case hex", `sha256-${"A".repeat(64)}`],
    ["a short hex", "sha256-abc"],
    ["another algorithm", `md5-${"a".repeat(64)}`],
    ["a plain tag", "v1.2.3"],
  ])("names no subject in %s", (_name, tag) => {
    expect(referrersFallbackSubject(tag)).toBeUndefined();
  });
});
