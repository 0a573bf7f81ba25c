import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  attestationStatement,
  bundleReferrer,
  cosignPayload,
  keySignedAttestationLayer,
  keySignedBundle,
  keySignedLayer,
  signatureManifest,
  signingStatementBytes,
  SLSA_PROVENANCE,
  TEST_BUILDER_ID,
} from "../../test/support/hostile-signing.js";
import { makeImage, writeOciLayoutDirectly, type TestContent } from "../../test/support/test-images.js";
import { parseDigest, type RepositoryLocation, type RepositoryPath } from "../reference/index.js";
import { createStoreProvider, type RegistryStoreProvider } from "../registry/index.js";
import { SignError } from "./errors.js";
import { identityMatches, re2Problem } from "./keyless-policy.js";
import { parseVerificationKey } from "./keys.js";
import {
  judgeSourceSignatures,
  keylessSourcePolicy,
  type SourceSignatureMode,
  type SourceVerdict,
} from "./source-policy.js";

/**
 * The source policy's "verify if present" mode (kpromo's staging check) and the attacks on it:
 * a forged or foreign signature, junk next to a valid one, a signature lifted from another digest,
 * an attestation by someone else. Key-signed artefacts are made here without project code
 * (test/support/hostile-signing.ts), staging is an OCI layout.
 */

let dir: string;
let provider: RegistryStoreProvider;
const builder = generateKeyPairSync("ec", { namedCurve: "P-256" });
const mallory = generateKeyPairSync("ec", { namedCurve: "P-256" });
const builderKey = parseVerificationKey(
  builder.publicKey.export({ type: "spki", format: "pem" }).toString(),
  "builder.pub",
);

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "source-presence-"));
  provider = createStoreProvider();
});
afterEach(async () => {
  await provider.close();
  await rm(dir, { recursive: true, force: true });
});

function sigTag(digest: string): string {
  return `${digest.replace(":", "-")}.sig`;
}
function attTag(digest: string): string {
  return `${digest.replace(":", "-")}.att`;
}

interface Staged {
  readonly name: string;
  readonly digest: string;
}

/** One staging repository per case: the image tagged v1 and whatever `extra` puts next to it. */
async function stage(
  name: string,
  extra: (image: {
    digest: string;
    mediaType: string;
    size: number;
  }) => { content: TestContent; tag?: string }[],
): Promise<Staged> {
  const image = makeImage({ layers: 1, layerSize: 32, mediaTypes: "oci", seed: `presence-${name}` });
  const subject = { digest: image.digest, mediaType: image.mediaType, size: image.bytes.length };
  await writeOciLayoutDirectly(path.join(dir, "staging", name), [
    { content: image, tag: "v1" },
    ...extra(subject),
  ]);
  return { name, digest: image.digest };
}

async function judge(
  staged: readonly Staged[],
  mode: SourceSignatureMode,
): Promise<Map<string, SourceVerdict>> {
  const requests = staged.map((entry) => {
    const location: RepositoryLocation = {
      kind: "oci-layout",
      directory: path.join(dir, "staging"),
      repository: entry.name as RepositoryPath,
    };
    return { location, key: entry.name, digest: parseDigest(entry.digest), rule: { keys: [builderKey] } };
  });
  const verdicts = await judgeSourceSignatures(requests, { provider, mode });
  return new Map(verdicts.map((verdict) => [verdict.request.key, verdict]));
}

describe("source signatures, verify if present", () => {
  it("promotes the unsigned, verifies what is there, and refuses what is present but not ours", async () => {
    const staged = [
      await stage("unsigned", () => []),
      await stage("signed", ({ digest }) => [
        {
          content: signatureManifest([keySignedLayer(builder.privateKey, cosignPayload("s/signed", digest))]),
          tag: sigTag(digest),
        },
      ]),
      await stage("forged", ({ digest }) => [
        {
          content: signatureManifest([keySignedLayer(mallory.privateKey, cosignPayload("s/forged", digest))]),
          tag: sigTag(digest),
        },
      ]),
      // A junk layer next to a valid one: one valid signature is enough (cosign's rule).
      await stage("junk-next-to-valid", ({ digest }) => [
        {
          content: signatureManifest([
            {
              ...keySignedLayer(builder.privateKey, cosignPayload("s/j", digest)),
              annotations: { "dev.cosignproject.cosign/signature": "AAAA" },
            },
            keySignedLayer(mallory.privateKey, cosignPayload("s/j", digest)),
            keySignedLayer(builder.privateKey, cosignPayload("s/j", digest)),
          ]),
          tag: sigTag(digest),
        },
      ]),
      // A genuine signature of another digest, put under this digest's .sig tag.
      await stage("lifted", ({ digest }) => {
        const other = makeImage({ layers: 1, layerSize: 32, mediaTypes: "oci", seed: "presence-other" });
        expect(other.digest).not.toBe(digest);
        return [
          {
            content: signatureManifest([
              keySignedLayer(builder.privateKey, cosignPayload("s/lifted", other.digest)),
            ]),
            tag: sigTag(digest),
          },
        ];
      }),
      // An attestation by a trusted key, no signature: verified when signatures are not required.
      await stage("attested", ({ digest }) => [
        {
          content: signatureManifest([
            keySignedAttestationLayer(builder.privateKey, attestationStatement(digest)),
          ]),
          tag: attTag(digest),
        },
      ]),
      // A valid signature, but an attestation by someone else next to the image.
      await stage("foreign-attestation", ({ digest }) => [
        {
          content: signatureManifest([keySignedLayer(builder.privateKey, cosignPayload("s/fa", digest))]),
          tag: sigTag(digest),
        },
        {
          content: signatureManifest([
            keySignedAttestationLayer(mallory.privateKey, attestationStatement(digest)),
          ]),
          tag: attTag(digest),
        },
      ]),
      // Our key's attestation, but about another digest.
      await stage("attestation-of-another", ({ digest }) => [
        {
          content: signatureManifest([
            keySignedAttestationLayer(builder.privateKey, attestationStatement(`sha256:${"0".repeat(64)}`)),
          ]),
          tag: attTag(digest),
        },
      ]),
      // Attestation and signature bundles (OCI referrers) by someone else.
      await stage("foreign-attestation-bundle", (subject) => [
        {
          content: bundleReferrer(
            keySignedBundle(mallory.privateKey, mallory.publicKey, attestationStatement(subject.digest)),
            subject,
            SLSA_PROVENANCE,
          ),
        },
      ]),
      await stage("attestation-bundle", (subject) => [
        {
          content: bundleReferrer(
            keySignedBundle(builder.privateKey, builder.publicKey, attestationStatement(subject.digest)),
            subject,
            SLSA_PROVENANCE,
          ),
        },
      ]),
      await stage("foreign-signing-bundle", (subject) => [
        {
          content: bundleReferrer(
            keySignedBundle(
              mallory.privateKey,
              mallory.publicKey,
              signingStatementBytes("s/b", subject.digest),
            ),
            subject,
          ),
        },
      ]),
    ];
    // A .sig tag holding no signature layer at all is something present that does not verify.
    staged.push(
      await stage("empty-sig", ({ digest }) => [
        {
          content: signatureManifest([
            { mediaType: "application/octet-stream", bytes: Buffer.from("x"), annotations: {} },
          ]),
          tag: sigTag(digest),
        },
      ]),
    );
    const ifPresent = await judge(staged, "if-present");
    expect(ifPresent.get("empty-sig")?.reason).toMatch(
      /^a signature is present but none verifies: sha256-[0-9a-f]+\.sig has no signature layer$/,
    );
    const status = (name: string) => ifPresent.get(name)?.status;
    const reason = (name: string) => ifPresent.get(name)?.reason ?? "";
    expect(status("unsigned")).toBe("unsigned");
    expect(status("signed")).toBe("verified");
    expect(ifPresent.get("signed")?.signers).toEqual([builderKey.keyId]);
    expect(status("junk-next-to-valid")).toBe("verified");
    expect(status("attested")).toBe("verified");
    expect(status("attestation-bundle")).toBe("verified");
    // What verified is listed for the verification summary; the provenance gives the builder.
    const attested = ifPresent.get("attested");
    expect(attested?.provenance).toBe("verified");
    expect(attested?.build).toMatchObject({
      builderId: TEST_BUILDER_ID,
      attestation: { predicateType: SLSA_PROVENANCE, signer: builderKey.keyId },
    });
    expect(attested?.inputs).toHaveLength(1);
    const input = attested?.inputs[0];
    expect(input?.uri).toMatch(/\/staging\/attested@sha256:[0-9a-f]{64}$/);
    expect(input?.uri.endsWith(`@${input.digest}`)).toBe(true);
    expect(ifPresent.get("signed")?.inputs).toHaveLength(1);
    expect(ifPresent.get("signed")?.provenance).toBe("absent");
    expect(ifPresent.get("unsigned")?.inputs).toEqual([]);
    expect(ifPresent.get("attestation-bundle")?.build?.builderId).toBe(TEST_BUILDER_ID);
    expect(status("forged")).toBe("refused");
    expect(reason("forged")).toMatch(
      /^a signature is present but none verifies: .*does not verify with the public key/,
    );
    expect(status("lifted")).toBe("refused");
    expect(reason("lifted")).toMatch(/a signature is present but none verifies/);
    expect(status("foreign-attestation")).toBe("refused");
    expect(reason("foreign-attestation")).toMatch(
      /^an attestation is present but none verifies: .*\.att layer .*none of the public keys/,
    );
    expect(status("attestation-of-another")).toBe("refused");
    expect(reason("attestation-of-another")).toMatch(/does not name sha256:/);
    expect(status("foreign-attestation-bundle")).toBe("refused");
    expect(reason("foreign-attestation-bundle")).toMatch(
      /attestation bundle sha256:[0-9a-f]{64}: signed with another key/,
    );
    expect(status("foreign-signing-bundle")).toBe("refused");
    expect(reason("foreign-signing-bundle")).toMatch(/a signature is present but none verifies: bundle/);

    // Required: the same, except that a digest without a signature is refused.
    const required = await judge(staged, "required");
    expect(required.get("unsigned")?.status).toBe("refused");
    expect(required.get("unsigned")?.reason).toMatch(/no signature \(sha256-.*\.sig is absent\)/);
    expect(required.get("attested")?.status).toBe("refused");
    expect(required.get("signed")?.status).toBe("verified");
    expect(required.get("junk-next-to-valid")?.status).toBe("verified");
    expect(required.get("foreign-attestation")?.status).toBe("refused");
  });
});

describe("RE2 expressions of keyless identities", () => {
  it("refuses what JavaScript would read differently from Go's RE2", () => {
    for (const pattern of [
      "(?<=https://)github\\.com/.*", // lookbehind
      "foo(?!bar).*", // lookahead
      "(a)\\1", // backreference
      "\\Ahttps://.*\\z", // RE2 anchors JavaScript reads as letters
      "(?i)release@example\\.com", // inline flags
      "[[:alpha:]]+@example\\.com", // POSIX class
      "[]a]+", // `]` first in a class
      "\\pL+", // Unicode class without braces
      "\\x{41}",
      "\\Qa.b\\E",
    ]) {
      expect(re2Problem(pattern), pattern).toBeDefined();
    }
    for (const pattern of [
      "https://github\\.com/kubernetes/release/\\.github/workflows/.+@refs/tags/v[0-9]+\\.[0-9]+\\.[0-9]+",
      "krel-trust@k8s-releng-prod\\.iam\\.gserviceaccount\\.com",
      "(?P<org>[a-z-]+)@example\\.com",
      "[^@]+@(a|b)\\.example",
      "\\d+\\s\\w+",
    ]) {
      expect(re2Problem(pattern), pattern).toBeUndefined();
    }
  });

  it("matches the whole value, with RE2's meaning of \\s and named groups", () => {
    const id = (subjectRegExp: string) => ({ subjectRegExp, issuer: "https://issuer" });
    expect(identityMatches(id("release@example\\.com"), "release@example.com", "https://issuer")).toBe(true);
    // Not a part of the value: cosign's MatchString would accept these; a whole match does not.
    expect(
      identityMatches(id("release@example\\.com"), "mallory+release@example.com", "https://issuer"),
    ).toBe(false);
    expect(identityMatches(id("release@example\\.com"), "release@example.com.evil", "https://issuer")).toBe(
      false,
    );
    // Alternation is grouped before anchoring.
    expect(identityMatches(id("a@x\\.io|b@x\\.io"), "a@x.io", "https://issuer")).toBe(true);
    expect(identityMatches(id("a@x\\.io|b@x\\.io"), "a@x.io.evil", "https://issuer")).toBe(false);
    expect(identityMatches(id("(?P<who>[a-z]+)@x\\.io"), "ab@x.io", "https://issuer")).toBe(true);
    // RE2's \s is [\t\n\f\r ]: a vertical tab or a no-break space is not one.
    expect(identityMatches(id("a\\sb"), "a b", "https://issuer")).toBe(true);
    expect(identityMatches(id("a\\sb"), "a\u00a0b", "https://issuer")).toBe(false);
    expect(identityMatches(id("a\\sb"), "a\vb", "https://issuer")).toBe(false);
    expect(identityMatches(id("a\\Sb"), "a\u00a0b", "https://issuer")).toBe(true);
    expect(
      identityMatches(
        { subject: "x", issuerRegExp: "https://token\\.actions\\.githubusercontent\\.com" },
        "x",
        "https://token.actions.githubusercontent.com.evil",
      ),
    ).toBe(false);
  });
});

describe("keylessSourcePolicy", () => {
  const trust = {
    certificateAuthorities: [],
    timestampAuthorities: [],
    tlogs: [],
    ctlogs: [],
    publicKey: () => {
      throw new Error("none");
    },
  };

  it("builds a default rule from cosign's flags, in the mode asked", () => {
    const policy = keylessSourcePolicy({
      certificateIdentityRegExp: "krel-trust@k8s-releng-prod\\.iam\\.gserviceaccount\\.com",
      certificateOidcIssuer: "https://accounts.google.com",
      trust,
      mode: "if-present",
    });
    expect(policy.mode).toBe("if-present");
    expect(policy.rules).toEqual([]);
    expect(policy.default?.keys).toEqual([]);
    expect(policy.default?.keyless?.identities).toEqual([
      {
        subjectRegExp: "krel-trust@k8s-releng-prod\\.iam\\.gserviceaccount\\.com",
        issuer: "https://accounts.google.com",
      },
    ]);
  });

  it("refuses an identity without subject or issuer, and expressions RE2 would read otherwise", () => {
    expect(() => keylessSourcePolicy({ certificateOidcIssuer: "https://i", trust })).toThrow(
      /needs subject or subjectRegExp/,
    );
    expect(() => keylessSourcePolicy({ certificateIdentity: "a@b", trust })).toThrow(
      /needs issuer or issuerRegExp/,
    );
    expect(() =>
      keylessSourcePolicy({
        certificateIdentityRegExp: "(?<!evil)@x\\.io",
        certificateOidcIssuer: "https://i",
        trust,
      }),
    ).toThrow(SignError);
  });
});
