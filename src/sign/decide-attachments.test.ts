import { describe, expect, it } from "vitest";
import type { Descriptor } from "../oci/index.js";
import { digestOf, signatureTag, type Tag } from "../reference/index.js";
import type { RepositoryStore } from "../registry/index.js";
import { buildLayerSet, CosignMediaType } from "./cosign-format.js";
import { decideLayerSet, decideSingleDocument, type ObservedLayerSet } from "./decide-attachments.js";

/** The byte-identity rules of decide-attachments.ts, on data. */

const SUBJECT = digestOf("subject");
const TAG = signatureTag(SUBJECT);
const store = (name: string) => ({ name }) as unknown as RepositoryStore;

function layer(seed: string): Descriptor {
  return {
    mediaType: CosignMediaType.simpleSigning,
    digest: digestOf(seed),
    size: seed.length,
    annotations: { "dev.cosignproject.cosign/signature": `sig-${seed}` },
  };
}

function observed(layers: Descriptor[], from = "x"): ObservedLayerSet {
  const built = buildLayerSet(layers);
  return { content: built.manifest, config: built.config.descriptor, layers, from: store(from) };
}

const none = () => [];

describe("deciding .sig manifests", () => {
  it("leaves converged mirrors alone", () => {
    const manifest = observed([layer("a"), layer("b")]);
    const item = decideLayerSet({
      kind: "sig",
      tag: TAG,
      destinations: ["d1", "d2"].map((key) => ({
        key,
        state: { kind: "present", digest: manifest.content.digest },
      })),
      manifests: new Map([[manifest.content.digest, manifest]]),
      missingIdentities: none,
    });
    expect(item?.action).toBe("unchanged");
    expect(item?.writeTo).toEqual([]);
  });

  it("copies the manifest that already holds the union, byte for byte, where it is missing or smaller", () => {
    const full = observed([layer("a"), layer("b")], "d1");
    const partial = observed([layer("b")], "d3");
    const item = decideLayerSet({
      kind: "sig",
      tag: TAG,
      destinations: [
        { key: "d1", state: { kind: "present", digest: full.content.digest } },
        { key: "d2", state: { kind: "absent" } },
        { key: "d3", state: { kind: "present", digest: partial.content.digest } },
      ],
      manifests: new Map([
        [full.content.digest, full],
        [partial.content.digest, partial],
      ]),
      missingIdentities: none,
    });
    expect(item?.action).toBe("write");
    expect(item?.writeTo).toEqual(["d2", "d3"]);
    expect(item?.content?.kind === "manifest" && item.content.manifest.bytes).toEqual(full.content.bytes);
  });

  it("builds one merged manifest when no mirror has every signature: the majority's layers first", () => {
    const common = observed([layer("a")], "d1");
    const other = observed([layer("c")], "d3");
    const source = observed([layer("s"), layer("a")], "staging");
    const input = {
      kind: "sig" as const,
      tag: TAG,
      source,
      destinations: [
        { key: "d1", state: { kind: "present" as const, digest: common.content.digest } },
        { key: "d2", state: { kind: "present" as const, digest: common.content.digest } },
        { key: "d3", state: { kind: "present" as const, digest: other.content.digest } },
      ],
      manifests: new Map([
        [common.content.digest, common],
        [other.content.digest, other],
      ]),
      missingIdentities: none,
    };
    const item = decideLayerSet(input);
    const expected = buildLayerSet([layer("a"), layer("s"), layer("c")]).manifest;
    expect(item?.digest).toBe(expected.digest);
    expect(item?.writeTo).toEqual(["d1", "d2", "d3"]);
    // Deterministic: the same observation gives the same bytes.
    expect(decideLayerSet(input)?.digest).toBe(expected.digest);
  });

  it("signs when our signature is missing, keeping every layer found, and skips unreadable mirrors", () => {
    const theirs = observed([layer("theirs")], "d1");
    const item = decideLayerSet({
      kind: "sig",
      tag: TAG,
      destinations: [
        { key: "d1", state: { kind: "present", digest: theirs.content.digest } },
        { key: "d2", state: { kind: "unreadable", message: "HTTP 500" } },
        { key: "d3", state: { kind: "absent" } },
      ],
      manifests: new Map([[theirs.content.digest, theirs]]),
      missingIdentities: (union) => (union.length === 1 ? ["registry.example.io/app"] : []),
    });
    expect(item?.action).toBe("sign");
    expect(item?.writeTo).toEqual(["d1", "d3"]);
    expect(item?.unreadable).toEqual([{ key: "d2", message: "HTTP 500" }]);
    expect(item?.sign?.keep.map((kept) => kept.descriptor.digest)).toEqual([layer("theirs").digest]);
  });

  it("chooses what the destinations outside the run's scope hold, as a full run would, and writes only in scope", () => {
    // A new mirror (d3) planned alone; d1 and d2 hold the converged manifest, d4 an older one.
    const converged = observed([layer("ours"), layer("theirs")], "d1");
    const older = observed([layer("ours")], "d4");
    const item = decideLayerSet({
      kind: "sig",
      tag: TAG,
      destinations: [{ key: "d3", state: { kind: "absent" } }],
      elsewhere: [
        { key: "d1", state: { kind: "present", digest: converged.content.digest } },
        { key: "d2", state: { kind: "present", digest: converged.content.digest } },
        { key: "d4", state: { kind: "present", digest: older.content.digest } },
        { key: "d5", state: { kind: "absent" } },
      ],
      manifests: new Map([
        [converged.content.digest, converged],
        [older.content.digest, older],
      ]),
      missingIdentities: none,
    });
    expect(item?.action).toBe("write");
    expect(item?.writeTo).toEqual(["d3"]);
    expect(item?.digest).toBe(converged.content.digest);
    expect(item?.content?.kind === "manifest" && item.content.manifest.bytes).toEqual(
      converged.content.bytes,
    );
  });

  it("counts destinations outside the scope as holders: their manifest leads a merge", () => {
    // In scope, d1 holds a staging-carried signature; the two others hold ours.
    const carried = observed([layer("staging")], "d1");
    const ours = observed([layer("ours")], "d2");
    const item = decideLayerSet({
      kind: "sig",
      tag: TAG,
      destinations: [{ key: "d1", state: { kind: "present", digest: carried.content.digest } }],
      elsewhere: ["d2", "d3"].map((key) => ({
        key,
        state: { kind: "present" as const, digest: ours.content.digest },
      })),
      manifests: new Map([
        [carried.content.digest, carried],
        [ours.content.digest, ours],
      ]),
      missingIdentities: none,
    });
    expect(item?.digest).toBe(buildLayerSet([layer("ours"), layer("staging")]).manifest.digest);
    expect(item?.writeTo).toEqual(["d1"]);
  });

  it("has nothing to do without signatures anywhere and no signing", () => {
    expect(
      decideLayerSet({
        kind: "sig",
        tag: TAG,
        destinations: [{ key: "d1", state: { kind: "absent" } }],
        manifests: new Map(),
        missingIdentities: none,
      }),
    ).toBeUndefined();
  });
});

describe("deciding a single-document attachment (.sbom)", () => {
  it("copies where absent and leaves a different document alone", () => {
    const staging = digestOf("sbom");
    const item = decideSingleDocument({
      tag: "sha256-x.sbom" as Tag,
      source: { digest: staging, from: store("staging") },
      destinations: [
        { key: "d1", state: { kind: "present", digest: staging } },
        { key: "d2", state: { kind: "absent" } },
        { key: "d3", state: { kind: "present", digest: digestOf("other") } },
      ],
    });
    expect(item.action).toBe("write");
    expect(item.writeTo).toEqual(["d2"]);
    expect(item.conflicts).toEqual([{ key: "d3", current: digestOf("other") }]);
  });
});
