import { createHash, type Hash } from "node:crypto";
import { InvalidNameError } from "../errors.js";
import { quoteExcerpt } from "../excerpt.js";

/**
 * A content digest, `algorithm:encoded`, restricted to the algorithms registries must accept:
 * sha256 (64 lower-case hex) and sha512 (128 lower-case hex).
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/descriptor.md#digests
 *
 * A branded string: cheap to store by the hundred thousand, and only `parseDigest` (or
 * `digestOf`, which computes one) can produce it.
 */
export type Digest = string & { readonly __brand: "Digest" };

export type DigestAlgorithm = "sha256" | "sha512";

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const DIGEST_PATTERN = /^(sha256|sha512):([0-9a-f]+)$/;

/** Why `input` is not a digest, or undefined when it is one. */
export function digestProblem(input: string): string | undefined {
  const colon = input.indexOf(":");
  if (colon < 0) return "expected algorithm:hex, such as sha256:<64 hex digits>";
  const algorithm = input.slice(0, colon);
  const encoded = input.slice(colon + 1);
  if (algorithm !== "sha256" && algorithm !== "sha512") {
    return `unsupported algorithm ${quoteExcerpt(algorithm)}; expected sha256 or sha512`;
  }
  if (/[A-F]/.test(encoded) && /^[0-9a-fA-F]+$/.test(encoded)) {
    return "hex digits must be lower-case";
  }
  if (!/^[0-9a-f]*$/.test(encoded)) return "the part after the colon must be hex digits";
  const want = HEX_LENGTH[algorithm];
  if (encoded.length !== want) {
    return `${algorithm} needs ${want} hex digits, found ${encoded.length}`;
  }
  return undefined;
}

export function isDigest(input: string): input is Digest {
  const match = DIGEST_PATTERN.exec(input);
  if (!match) return false;
  return match[2]?.length === HEX_LENGTH[match[1] as DigestAlgorithm];
}

export function parseDigest(input: string): Digest {
  if (isDigest(input)) return input;
  throw new InvalidNameError("digest", input, digestProblem(input) ?? "not a digest");
}

export function digestAlgorithm(digest: Digest): DigestAlgorithm {
  return digest.slice(0, digest.indexOf(":")) as DigestAlgorithm;
}

export function digestHex(digest: Digest): string {
  return digest.slice(digest.indexOf(":") + 1);
}

/** The digest of bytes held in memory (manifests, configs, small test blobs). */
export function digestOf(bytes: Uint8Array | string, algorithm: DigestAlgorithm = "sha256"): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}` as Digest;
}

/**
 * Incremental digest computation for streamed content: feed chunks, then compare.
 * Used to verify blobs while they stream, without buffering them.
 */
export class DigestVerifier {
  readonly expected: Digest;
  private readonly hash: Hash;
  private count = 0;

  constructor(expected: Digest) {
    this.expected = expected;
    this.hash = createHash(digestAlgorithm(expected));
  }

  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.count += chunk.byteLength;
  }

  get bytesSeen(): number {
    return this.count;
  }

  /** The digest of everything fed so far; call once. */
  finish(): Digest {
    return `${digestAlgorithm(this.expected)}:${this.hash.digest("hex")}` as Digest;
  }
}
