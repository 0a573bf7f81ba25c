import { describe, expect, it } from "vitest";
import type { Digest } from "../reference/index.js";
import { parseAttachedArtifactTag } from "./attached-artifact-tag.js";

const IMAGE = `sha256:${"2".repeat(64)}` as Digest;
const hex = (digest: Digest) => digest.slice("sha256:".length);

describe("attached artifact tags", () => {
  it.each([
    [`sha256-${hex(IMAGE)}.sig`, "signature"],
    [`sha256-${hex(IMAGE)}.att`, "attestation"],
    [`sha256-${hex(IMAGE)}.sbom`, "sbom"],
    [`sha256-${hex(IMAGE)}`, "referrers-index"],
  ])("%s is a %s", (tag, kind) => {
    expect(parseAttachedArtifactTag(tag)).toEqual({ subject: IMAGE, kind });
  });

  it.each([
    "sha256-abc.sig",
    `sha512-${hex(IMAGE)}.sig`,
    `sha512-${hex(IMAGE)}`,
    `sha256-${hex(IMAGE)}.sigx`,
    "v1.0",
    `sha256-${"A".repeat(64)}.sig`,
    `sha256-${"A".repeat(64)}`,
  ])("%s is not", (tag) => {
    expect(parseAttachedArtifactTag(tag)).toBeUndefined();
  });
});
