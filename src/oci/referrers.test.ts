import { describe, expect, it } from "vitest";
import { digestOf, parseDigest } from "../reference/index.js";
import { referrersFallbackTag } from "./referrers.js";

// Reading a fallback tag back (with cosign's tags, in one vocabulary) is reference/attachment-tag.ts's
// parseAttachmentTag, tested in sign/cosign-format.test.ts.
describe("the referrers fallback tag", () => {
  it("is <alg>-<hex>", () => {
    const subject = digestOf("subject");
    expect(referrersFallbackTag(subject)).toBe(`sha256-${subject.slice("sha256:".length)}`);
  });

  it("cuts a longer digest to 64 characters", () => {
    const long = parseDigest(`sha512:${"ab".repeat(64)}`);
    expect(referrersFallbackTag(long)).toBe(`sha512-${"ab".repeat(32)}`);
  });
});
