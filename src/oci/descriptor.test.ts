import { describe, expect, it } from "vitest";
import { digestOf } from "../reference/index.js";
import { InvalidContentError, parseAnnotations, parseArtifactType, parseDescriptor } from "./descriptor.js";

const DIGEST = digestOf("a blob");
const SHA512 = digestOf("a blob", "sha512");
const VALID = { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: DIGEST, size: 32 };

function refusal(value: unknown): string {
  try {
    parseDescriptor(value, "here");
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidContentError);
    expect((error as InvalidContentError).code).toBe("invalid-content");
    return (error as Error).message;
  }
  throw new Error("parseDescriptor accepted it");
}

describe("parseDescriptor", () => {
  it("reads a minimal descriptor, and sha512 digests", () => {
    expect(parseDescriptor(VALID, "here")).toEqual(VALID);
    expect(parseDescriptor({ ...VALID, digest: SHA512 }, "here").digest).toBe(SHA512);
    expect(parseDescriptor({ ...VALID, size: 0 }, "here").size).toBe(0);
  });

  it("reads every optional property of the spec, and drops unknown ones", () => {
    const full = {
      ...VALID,
      urls: ["https://example.test/blob"],
      annotations: { "org.opencontainers.image.title": "x", empty: "" },
      platform: {
        architecture: "arm64",
        os: "windows",
        "os.version": "10.0.17763.1040",
        "os.features": ["win32k"],
        variant: "v8",
      },
      artifactType: "application/vnd.example+json",
      data: "e30=",
      unknown: { deeply: { nested: [1, 2, 3] } },
    };
    const { data: _data, unknown: _unknown, ...known } = full;
    expect(parseDescriptor(full, "here")).toEqual(known);
  });

  it("returns copies, not the input objects", () => {
    const annotations = { a: "b" };
    const platform = { architecture: "amd64", os: "linux", extra: 1 };
    const parsed = parseDescriptor({ ...VALID, annotations, platform }, "here");
    expect(parsed.annotations).not.toBe(annotations);
    expect(parsed.platform).toEqual({ architecture: "amd64", os: "linux" });
  });

  it("refuses what is not an object", () => {
    for (const value of [undefined, null, "sha256:x", 1, [VALID]]) {
      expect(refusal(value)).toMatch(/^here: a descriptor must be an object/);
    }
  });

  it("refuses a missing, empty or non-string mediaType", () => {
    for (const mediaType of [undefined, "", 1, null, ["a"]]) {
      expect(refusal({ ...VALID, mediaType })).toBe("here: descriptor has no mediaType");
    }
  });

  it("refuses bad digests: wrong algorithm, case, length, separators, types", () => {
    const hex = DIGEST.slice("sha256:".length);
    for (const digest of [
      undefined,
      1,
      null,
      "",
      hex,
      `sha256:${hex.toUpperCase()}`,
      `sha256:${hex.slice(1)}`,
      `sha256:${hex}0`,
      `md5:${hex.slice(0, 32)}`,
      `sha384:${hex}`,
      `sha256:${hex}\n`,
      ` ${DIGEST}`,
      `sha512:${hex}`,
    ]) {
      expect(refusal({ ...VALID, digest })).toMatch(/^here: descriptor digest .* is not a valid digest$/);
    }
  });

  it("names a refused digest as a short escaped excerpt, never the whole value", () => {
    const message = refusal({ ...VALID, digest: `sha256:${"\u001b[31m".repeat(1000)}` });
    expect(message).not.toContain("\u001b");
    expect(message.length).toBeLessThan(600);
    expect(refusal({ ...VALID, digest: { huge: "x".repeat(10_000) } })).toBe(
      "here: descriptor digest an object is not a valid digest",
    );
  });

  it("refuses negative, fractional, huge or non-number sizes", () => {
    for (const size of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1, 1e300, Infinity, NaN, "32", null, undefined]) {
      expect(refusal({ ...VALID, size })).toBe("here: descriptor size must be a non-negative integer");
    }
    expect(parseDescriptor({ ...VALID, size: Number.MAX_SAFE_INTEGER }, "here").size).toBe(
      Number.MAX_SAFE_INTEGER,
    );
  });

  it("refuses annotations that are not a map of strings", () => {
    expect(refusal({ ...VALID, annotations: ["a"] })).toBe(
      "here: annotations must be a map of strings to strings, not a list",
    );
    expect(refusal({ ...VALID, annotations: null })).toMatch(/not null$/);
    expect(refusal({ ...VALID, annotations: "a=b" })).toMatch(/not "a=b"$/);
    expect(refusal({ ...VALID, annotations: { a: 1 } })).toBe('here: annotation "a" is "1", not a string');
    expect(refusal({ ...VALID, annotations: { a: { b: "c" } } })).toMatch(/"a" is an object, not a string$/);
    expect(refusal({ ...VALID, annotations: { a: null } })).toMatch(/"a" is null, not a string$/);
    expect(refusal({ ...VALID, annotations: { a: ["b"] } })).toMatch(/"a" is a list, not a string$/);
    expect(refusal({ ...VALID, annotations: { a: true } })).toMatch(/"a" is "true", not a string$/);
  });

  it("refuses urls that are not a list of strings (they were silently filtered before)", () => {
    expect(refusal({ ...VALID, urls: "https://example.test" })).toBe("here: urls must be a list of strings");
    expect(refusal({ ...VALID, urls: ["https://example.test", 1] })).toBe(
      "here: urls must be a list of strings",
    );
    expect(parseDescriptor({ ...VALID, urls: [] }, "here").urls).toEqual([]);
  });

  it("refuses a platform without architecture and os strings, or with fields of the wrong type", () => {
    const platform = { architecture: "amd64", os: "linux" };
    for (const bad of [
      null,
      "linux/amd64",
      [],
      { os: "linux" },
      { architecture: "amd64" },
      { ...platform, os: 1 },
    ]) {
      expect(refusal({ ...VALID, platform: bad })).toBe("here: platform needs architecture and os strings");
    }
    expect(refusal({ ...VALID, platform: { ...platform, variant: 8 } })).toMatch(
      /platform variant must be a string/,
    );
    expect(refusal({ ...VALID, platform: { ...platform, "os.version": 10 } })).toMatch(
      /platform os.version must be a string/,
    );
    expect(refusal({ ...VALID, platform: { ...platform, "os.features": "win32k" } })).toMatch(
      /platform os.features must be a list of strings/,
    );
    expect(refusal({ ...VALID, platform: { ...platform, "os.features": [1] } })).toMatch(
      /platform os.features must be a list of strings/,
    );
  });

  it("refuses an artifactType that is not a string (it was silently dropped before)", () => {
    expect(refusal({ ...VALID, artifactType: 1 })).toBe('here: artifactType must be a string, not "1"');
    expect(refusal({ ...VALID, artifactType: { a: 1 } })).toMatch(
      /artifactType must be a string, not an object/,
    );
  });
});

describe("parseAnnotations", () => {
  it("is undefined when absent and a copy when present", () => {
    expect(parseAnnotations(undefined, "here")).toBeUndefined();
    expect(parseAnnotations({}, "here")).toEqual({});
  });

  it("keeps a __proto__ key as a key and never touches the prototype", () => {
    const parsed = parseAnnotations(JSON.parse('{"__proto__":"x","a":"b"}'), "here");
    expect(Object.keys(parsed ?? {})).toEqual(["__proto__", "a"]);
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
    expect(() => parseAnnotations(JSON.parse('{"__proto__":{"polluted":"yes"}}'), "here")).toThrow(
      InvalidContentError,
    );
  });

  it("names a refused key as a short escaped excerpt", () => {
    const key = `\u202e${"k".repeat(500)}`;
    const error = (() => {
      try {
        parseAnnotations({ [key]: 1 }, "here");
      } catch (caught) {
        return caught as Error;
      }
      throw new Error("accepted");
    })();
    expect(error.message).not.toContain("\u202e");
    expect(error.message).toContain("\\u202e");
    expect(error.message.length).toBeLessThan(200);
  });
});

describe("parseArtifactType", () => {
  it("is a string or absent", () => {
    expect(parseArtifactType(undefined, "here")).toBeUndefined();
    expect(parseArtifactType("application/x", "here")).toBe("application/x");
    expect(() => parseArtifactType(null, "here")).toThrow("here: artifactType must be a string, not null");
  });
});
