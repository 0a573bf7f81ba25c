import { describe, expect, it } from "vitest";
import { digestOf } from "../reference/index.js";
import { InvalidContentError, type Descriptor } from "./descriptor.js";
import {
  compressedImageSize,
  MAX_INDEX_DEPTH,
  parseManifest,
  successors,
  type ImageIndex,
  type ImageManifest,
} from "./manifest.js";
import { MediaType } from "./media-type.js";

const encode = (value: unknown) =>
  new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value));

const config: Descriptor = { mediaType: MediaType.ociImageConfig, digest: digestOf("config"), size: 100 };
const layer: Descriptor = { mediaType: MediaType.ociLayerTarGzip, digest: digestOf("layer"), size: 2000 };
const child: Descriptor = {
  mediaType: MediaType.ociImageManifest,
  digest: digestOf("child"),
  size: 500,
  platform: { architecture: "amd64", os: "linux" },
};

const OCI_MANIFEST = { schemaVersion: 2, mediaType: MediaType.ociImageManifest, config, layers: [layer] };
const OCI_INDEX = { schemaVersion: 2, mediaType: MediaType.ociImageIndex, manifests: [child] };
const DOCKER_MANIFEST = {
  schemaVersion: 2,
  mediaType: MediaType.dockerManifest,
  config: { ...config, mediaType: MediaType.dockerImageConfig },
  layers: [{ ...layer, mediaType: MediaType.dockerLayerTarGzip }],
};
const DOCKER_LIST = {
  schemaVersion: 2,
  mediaType: MediaType.dockerManifestList,
  manifests: [{ ...child, mediaType: MediaType.dockerManifest }],
};

function refusal(document: unknown, mediaType?: string): string {
  try {
    parseManifest(encode(document), mediaType, "repo@x");
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidContentError);
    return (error as Error).message;
  }
  throw new Error("parseManifest accepted it");
}

describe("parseManifest: valid documents", () => {
  it("reads an OCI image manifest", () => {
    expect(parseManifest(encode(OCI_MANIFEST), MediaType.ociImageManifest, "here")).toEqual({
      kind: "manifest",
      mediaType: MediaType.ociImageManifest,
      config,
      layers: [layer],
    });
  });

  it("reads an OCI index, a Docker manifest and a Docker manifest list", () => {
    const index = parseManifest(encode(OCI_INDEX), undefined, "here") as ImageIndex;
    expect(index).toEqual({ kind: "index", mediaType: MediaType.ociImageIndex, manifests: [child] });
    const docker = parseManifest(encode(DOCKER_MANIFEST), MediaType.dockerManifest, "here");
    expect(docker.kind).toBe("manifest");
    expect(docker.mediaType).toBe(MediaType.dockerManifest);
    const list = parseManifest(encode(DOCKER_LIST), MediaType.dockerManifestList, "here");
    expect(list.kind).toBe("index");
    expect((list as ImageIndex).manifests[0]?.platform).toEqual({ architecture: "amd64", os: "linux" });
  });

  it("reads an artifact manifest: artifactType, subject, annotations, the empty config", () => {
    const subject = { mediaType: MediaType.ociImageManifest, digest: digestOf("subject"), size: 10 };
    const empty = { mediaType: MediaType.ociEmpty, digest: digestOf("{}"), size: 2, data: "e30=" };
    const parsed = parseManifest(
      encode({
        ...OCI_MANIFEST,
        artifactType: "application/vnd.example.sbom+json",
        config: empty,
        subject,
        annotations: { "org.opencontainers.image.created": "2024-01-01T00:00:00Z" },
      }),
      MediaType.ociImageManifest,
      "here",
    );
    expect(parsed).toMatchObject({
      artifactType: "application/vnd.example.sbom+json",
      subject,
      annotations: { "org.opencontainers.image.created": "2024-01-01T00:00:00Z" },
      config: { mediaType: MediaType.ociEmpty, size: 2 },
    });
  });

  it("reads an index with subject, artifactType and annotations, and an index of indexes", () => {
    const nested = { ...child, mediaType: MediaType.ociImageIndex };
    const parsed = parseManifest(
      encode({
        ...OCI_INDEX,
        manifests: [nested, child],
        artifactType: "application/vnd.example",
        subject: child,
        annotations: { a: "b" },
      }),
      undefined,
      "here",
    );
    expect(parsed).toMatchObject({
      kind: "index",
      artifactType: "application/vnd.example",
      annotations: { a: "b" },
    });
    expect((parsed as ImageIndex).manifests.map((entry) => entry.mediaType)).toEqual([
      MediaType.ociImageIndex,
      MediaType.ociImageManifest,
    ]);
  });

  it("guesses the kind of a document without mediaType from its shape, or takes the served type", () => {
    const { mediaType: _m, ...bareManifest } = OCI_MANIFEST;
    const { mediaType: _i, ...bareIndex } = OCI_INDEX;
    expect(parseManifest(encode(bareManifest), undefined, "here").mediaType).toBe(MediaType.ociImageManifest);
    expect(parseManifest(encode(bareIndex), undefined, "here").mediaType).toBe(MediaType.ociImageIndex);
    const { mediaType: _d, ...bareDocker } = DOCKER_MANIFEST;
    expect(parseManifest(encode(bareDocker), MediaType.dockerManifest, "here").mediaType).toBe(
      MediaType.dockerManifest,
    );
    const { schemaVersion: _s, ...noVersion } = OCI_MANIFEST;
    expect(parseManifest(encode(noVersion), undefined, "here").kind).toBe("manifest");
  });

  it("takes the document's own mediaType when the registry served a generic type", () => {
    expect(parseManifest(encode(OCI_INDEX), "application/json", "here").mediaType).toBe(
      MediaType.ociImageIndex,
    );
  });

  it("ignores unknown fields however deep they nest", () => {
    const depth = 100_000;
    const deep = `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
    const text = JSON.stringify(OCI_MANIFEST).replace(/}$/, `,"unknown":${deep}}`);
    expect(parseManifest(encode(text), undefined, "here").kind).toBe("manifest");
  });
});

describe("parseManifest: malformed documents", () => {
  it("refuses bytes that are not UTF-8 JSON, with the parser's message escaped", () => {
    expect(() => parseManifest(new Uint8Array([0xff, 0xfe]), undefined, "here")).toThrow(InvalidContentError);
    const message = refusal(`{"a":"\u001b[2J${"x".repeat(5000)}`);
    expect(message).toMatch(/^repo@x: manifest is not valid UTF-8 JSON/);
    expect(message).not.toContain("\u001b");
    expect(message.length).toBeLessThan(600);
  });

  it("refuses a document that is not an object", () => {
    for (const document of [[], '"manifest"', 2, null]) {
      expect(refusal(document)).toBe("repo@x: manifest must be a JSON object");
    }
  });

  it("refuses a schemaVersion other than 2 (Docker schema 1, strings, numbers)", () => {
    expect(refusal({ ...OCI_MANIFEST, schemaVersion: 1 })).toBe('repo@x: schemaVersion "1" is not 2');
    expect(refusal({ ...OCI_MANIFEST, schemaVersion: "2" })).toBe('repo@x: schemaVersion "2" is not 2');
    expect(refusal({ ...OCI_MANIFEST, schemaVersion: null })).toBe("repo@x: schemaVersion null is not 2");
  });

  it("refuses a mediaType that is not a string, unknown, or disagrees with the served one", () => {
    expect(refusal({ ...OCI_MANIFEST, mediaType: 1 })).toBe(
      'repo@x: manifest mediaType must be a string, not "1"',
    );
    expect(
      refusal({ ...OCI_MANIFEST, mediaType: "application/vnd.docker.distribution.manifest.v1+json" }),
    ).toBe('repo@x: unsupported manifest media type "application/vnd.docker.distribution.manifest.v1+json"');
    expect(refusal(OCI_MANIFEST, MediaType.dockerManifest)).toMatch(
      /manifest says mediaType "application\/vnd.oci.image.manifest.v1\+json" but was served or described as "application\/vnd.docker.distribution.manifest.v2\+json"/,
    );
    const { mediaType: _m, ...bare } = OCI_MANIFEST;
    expect(refusal(bare, "text/html\u001b[2J")).toBe(
      'repo@x: unsupported manifest media type "text/html\\u001b[2J"',
    );
  });

  it("refuses an index without a manifests list, and a manifest without config or layers", () => {
    expect(refusal({ ...OCI_INDEX, manifests: {} })).toBe("repo@x: index has no manifests list");
    const { manifests: _m, ...noManifests } = OCI_INDEX;
    expect(refusal(noManifests)).toBe("repo@x: index has no manifests list");
    const { config: _c, ...noConfig } = OCI_MANIFEST;
    expect(refusal(noConfig)).toMatch(/^repo@x config: a descriptor must be an object/);
    const { layers: _l, ...noLayers } = OCI_MANIFEST;
    expect(refusal(noLayers)).toBe("repo@x: manifest has no layers list");
    expect(refusal({ ...OCI_MANIFEST, layers: "layer" })).toBe("repo@x: manifest has no layers list");
  });

  it("names the entry that is malformed: layers, manifests, config, subject", () => {
    expect(refusal({ ...OCI_MANIFEST, layers: [layer, { ...layer, size: -1 }] })).toBe(
      "repo@x layers[1]: descriptor size must be a non-negative integer",
    );
    expect(refusal({ ...OCI_INDEX, manifests: [{ ...child, digest: "sha256:short" }] })).toBe(
      'repo@x manifests[0]: descriptor digest "sha256:short" is not a valid digest',
    );
    expect(refusal({ ...OCI_MANIFEST, config: { ...config, size: 2 ** 60 } })).toBe(
      "repo@x config: descriptor size must be a non-negative integer",
    );
    expect(refusal({ ...OCI_MANIFEST, subject: "sha256:abc" })).toMatch(
      /^repo@x subject: a descriptor must be an object/,
    );
    expect(refusal({ ...OCI_MANIFEST, subject: { ...child, mediaType: "" } })).toBe(
      "repo@x subject: descriptor has no mediaType",
    );
  });

  it("refuses manifest-level annotations that are not a map of strings (they were cast unchecked)", () => {
    expect(refusal({ ...OCI_MANIFEST, annotations: { "org.example": 1 } })).toBe(
      'repo@x: annotation "org.example" is "1", not a string',
    );
    expect(refusal({ ...OCI_INDEX, annotations: { a: { nested: "object" } } })).toBe(
      'repo@x: annotation "a" is an object, not a string',
    );
    expect(refusal({ ...OCI_MANIFEST, annotations: ["a"] })).toBe(
      "repo@x: annotations must be a map of strings to strings, not a list",
    );
    expect(refusal({ ...OCI_MANIFEST, annotations: null })).toBe(
      "repo@x: annotations must be a map of strings to strings, not null",
    );
  });

  it("refuses a manifest-level artifactType that is not a string (it was dropped before)", () => {
    expect(refusal({ ...OCI_MANIFEST, artifactType: ["a"] })).toBe(
      "repo@x: artifactType must be a string, not a list",
    );
    expect(refusal({ ...OCI_INDEX, artifactType: 7 })).toBe('repo@x: artifactType must be a string, not "7"');
  });
});

describe("what a manifest points at", () => {
  const manifest = parseManifest(
    encode({ ...OCI_MANIFEST, layers: [layer, { ...layer, digest: digestOf("l2"), size: 3 }] }),
    undefined,
    "here",
  ) as ImageManifest;

  it("successors: config then layers for a manifest, children for an index, never the subject", () => {
    expect(successors(manifest).map((entry) => entry.digest)).toEqual([
      config.digest,
      layer.digest,
      digestOf("l2"),
    ]);
    const index = parseManifest(encode({ ...OCI_INDEX, subject: layer }), undefined, "here");
    expect(successors(index)).toEqual([child]);
  });

  it("compressedImageSize adds config and layers", () => {
    expect(compressedImageSize(manifest)).toBe(100 + 2000 + 3);
  });

  it("MAX_INDEX_DEPTH is a small positive bound", () => {
    expect(MAX_INDEX_DEPTH).toBeGreaterThanOrEqual(2);
    expect(MAX_INDEX_DEPTH).toBeLessThanOrEqual(16);
  });
});
