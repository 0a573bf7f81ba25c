import { readFile, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { Readable } from "node:stream";
import {
  promotionStatement,
  PROMOTION_PREDICATE_TYPE,
  statementBytes,
  verificationSummaryStatement,
  VSA_PREDICATE_TYPE,
  type BuildRecord,
  type ReviewRecord,
} from "../../src/provenance/index.js";
import type { Descriptor } from "../../src/oci/index.js";
import {
  parseRegistryLocation,
  parseRepositoryPath,
  repositoryIn,
  type Digest,
} from "../../src/reference/index.js";
import { createStoreProvider } from "../../src/registry/index.js";
import { buildBundleReferrer, createKeySigner, parseSigningKey } from "../../src/sign/index.js";
import type { TestRegistry } from "./registry-harness.js";

/**
 * Promotion attestations as `promote` writes them (src/provenance/ statements, signed into a
 * DSSE sigstore bundle, stored as an OCI referrer annotated with the predicate type), built with
 * the writer's own pieces so the readers (`verify --attestations`, `explain`) are tested against
 * the real format; and pushed through the project's registry client, which keeps the referrers
 * fallback tag on registries without the referrers API. For seeding and tampering in tests.
 */

export const CREATED = "2026-12-05T12:00:00Z";

export interface RecordFacts {
  /** The canonical name (`<identity>`, the statement's dstRef without the digest). */
  readonly identity: string;
  readonly digest: Digest;
  readonly srcRef?: string;
  readonly index?: Digest;
  readonly review?: ReviewRecord;
  readonly build?: BuildRecord;
  readonly promoterVersion?: string;
}

/** The promotion record's statement (the lead's builder). */
export function promotionRecord(facts: RecordFacts): Record<string, unknown> {
  return promotionStatement({
    digest: facts.digest,
    srcRef: facts.srcRef ?? `staging.example/app@${facts.digest}`,
    dstRef: `${facts.identity}@${facts.digest}`,
    timestamp: CREATED,
    promoterVersion: facts.promoterVersion ?? "9.9.9",
    ...(facts.index ? { index: facts.index } : {}),
    ...(facts.review ? { review: facts.review } : {}),
    ...(facts.build ? { build: facts.build } : {}),
  });
}

/** The VSA's statement for the same subject. */
export function verificationSummary(facts: RecordFacts): Record<string, unknown> {
  return verificationSummaryStatement({
    digest: facts.digest,
    resourceUri: `${facts.identity}@${facts.digest}`,
    timeVerified: CREATED,
    promoterVersion: facts.promoterVersion ?? "9.9.9",
    inputAttestations: [],
  });
}

export interface SignedReferrer {
  readonly manifest: { readonly digest: Digest; readonly mediaType: string; readonly bytes: Uint8Array };
  readonly blobs: readonly { readonly descriptor: Descriptor; readonly bytes: Uint8Array }[];
  /** The bundle JSON, for tampering. */
  readonly bundle: Record<string, unknown>;
}

/** Signs `statement` with the PKCS#8 PEM key and wraps it as a referrer of `subject`. */
export async function signedReferrer(
  privateKeyPem: string,
  statement: Record<string, unknown>,
  subject: Descriptor,
  predicateType: string,
): Promise<SignedReferrer> {
  const signer = createKeySigner(parseSigningKey(privateKeyPem, "test key"));
  const bundle = await signer.signStatement(statementBytes(statement));
  return referrerOfBundle(bundle, subject, predicateType);
}

/** A referrer holding exactly `bundle` (after tampering, say). */
export function referrerOfBundle(
  bundle: Record<string, unknown>,
  subject: Descriptor,
  predicateType: string,
): SignedReferrer {
  const built = buildBundleReferrer(
    new TextEncoder().encode(JSON.stringify(bundle)),
    subject,
    CREATED,
    predicateType,
  );
  return { manifest: built.manifest, blobs: built.blobs, bundle };
}

/** The bundle with its DSSE payload replaced by `statement`, its signature kept (an edit). */
export function withEditedPayload(
  bundle: Record<string, unknown>,
  statement: Record<string, unknown>,
): Record<string, unknown> {
  const envelope = bundle.dsseEnvelope as Record<string, unknown>;
  return {
    ...bundle,
    dsseEnvelope: { ...envelope, payload: Buffer.from(statementBytes(statement)).toString("base64") },
  };
}

/** Both attestations of one subject, signed with `privateKeyPem`. */
export async function attestationsFor(
  privateKeyPem: string,
  facts: RecordFacts,
  subject: Descriptor,
): Promise<{ promotion: SignedReferrer; summary: SignedReferrer }> {
  return {
    promotion: await signedReferrer(privateKeyPem, promotionRecord(facts), subject, PROMOTION_PREDICATE_TYPE),
    summary: await signedReferrer(privateKeyPem, verificationSummary(facts), subject, VSA_PREDICATE_TYPE),
  };
}

/** Pushes referrers (blobs, then the manifest by digest) to `registry`/`repository`. */
export async function pushReferrers(
  registry: TestRegistry,
  repository: string,
  referrers: readonly SignedReferrer[],
  homeDirectory: string,
): Promise<void> {
  const provider = createStoreProvider({ homeDirectory, env: {} });
  try {
    const store = provider.repository(
      repositoryIn(parseRegistryLocation(registry.host), parseRepositoryPath(repository)),
    );
    for (const referrer of referrers) {
      for (const blob of referrer.blobs) await store.putBlob(blob.descriptor, Readable.from([blob.bytes]));
      await store.putManifest(referrer.manifest, referrer.manifest.digest);
    }
  } finally {
    await provider.close();
  }
}

/**
 * Changes one byte of a blob in the registry's own storage (what a compromised or rotting
 * storage backend serves): same size, another digest.
 */
export async function corruptStoredBlob(registry: TestRegistry, digest: Digest): Promise<void> {
  const hex = digest.slice("sha256:".length);
  const file = path.join(registry.dataDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
  const bytes = await readFile(file);
  const at = bytes.indexOf('"payload":"');
  if (at < 0) throw new Error(`blob ${digest} is not a bundle with a payload`);
  const position = at + '"payload":"'.length + 4;
  bytes[position] = bytes[position] === 0x41 ? 0x42 : 0x41;
  await writeFile(file, bytes);
}
