import { createHash } from "node:crypto";
import { InvalidNameError } from "../errors.js";
const HEX_LENGTH = { sha256: 64, sha512: 128 };
const DIGEST_PATTERN = /^(sha256|sha512):([0-9a-f]+)$/;
/** Why `input` is not a digest, or undefined when it is one. */
export function digestProblem(input) {
    const colon = input.indexOf(":");
    if (colon < 0)
        return "expected algorithm:hex, such as sha256:<64 hex digits>";
    const algorithm = input.slice(0, colon);
    const encoded = input.slice(colon + 1);
    if (algorithm !== "sha256" && algorithm !== "sha512") {
        return `unsupported algorithm ${JSON.stringify(algorithm)}; expected sha256 or sha512`;
    }
    if (/[A-F]/.test(encoded) && /^[0-9a-fA-F]+$/.test(encoded)) {
        return "hex digits must be lower-case";
    }
    if (!/^[0-9a-f]*$/.test(encoded))
        return "the part after the colon must be hex digits";
    const want = HEX_LENGTH[algorithm];
    if (encoded.length !== want) {
        return `${algorithm} needs ${want} hex digits, found ${encoded.length}`;
    }
    return undefined;
}
export function isDigest(input) {
    const match = DIGEST_PATTERN.exec(input);
    if (!match)
        return false;
    return match[2]?.length === HEX_LENGTH[match[1]];
}
export function parseDigest(input) {
    if (isDigest(input))
        return input;
    throw new InvalidNameError("digest", input, digestProblem(input) ?? "not a digest");
}
export function digestAlgorithm(digest) {
    return digest.slice(0, digest.indexOf(":"));
}
export function digestHex(digest) {
    return digest.slice(digest.indexOf(":") + 1);
}
/** The digest of bytes held in memory (manifests, configs, small test blobs). */
export function digestOf(bytes, algorithm = "sha256") {
    return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}
/**
 * Incremental digest computation for streamed content: feed chunks, then compare.
 * Used to verify blobs while they stream, without buffering them.
 */
export class DigestVerifier {
    expected;
    hash;
    count = 0;
    constructor(expected) {
        this.expected = expected;
        this.hash = createHash(digestAlgorithm(expected));
    }
    update(chunk) {
        this.hash.update(chunk);
        this.count += chunk.byteLength;
    }
    get bytesSeen() {
        return this.count;
    }
    /** The digest of everything fed so far; call once. */
    finish() {
        return `${digestAlgorithm(this.expected)}:${this.hash.digest("hex")}`;
    }
}
//# sourceMappingURL=digest.js.map