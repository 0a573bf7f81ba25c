import { Semaphore } from "../concurrency/index.js";
import { copyGraphs, type CopyDestinationStore } from "../copy/index.js";
import { AbortedError, type Problem } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import { digestOf, type Digest, type Tag } from "../reference/index.js";
import {
  openOnSide,
  type CallOptions,
  type ManifestContent,
  type RepositoryOpener,
} from "../registry/index.js";
import type {
  AttachmentPlan,
  AttachmentWork,
  PlannedContent,
  SignatureTarget,
  WorkItem,
  WorkItemKind,
} from "./attachment-plan.js";
import type { SerializedBundle } from "@sigstore/bundle";
import { BlobCache, ensureBlob, type PlannedBlob } from "./blob-io.js";
import { attestationLayer, envelopeBytesOfBundle } from "./attestation-format.js";
import { buildBundleReferrer, signingStatement } from "./bundle-format.js";
import {
  buildLayerSet,
  MAX_SIGNATURE_LAYER_BYTES,
  signatureLayer,
  simpleSigningPayload,
} from "./cosign-format.js";
import { problemOf, SignError } from "./errors.js";
import type { OwnVerdict } from "./own-signatures.js";
import type { PlannedStatement } from "./promotion-attestations.js";
import { cosignMaterialAnnotations, type ImageSigner } from "./signer.js";
import type { SignatureSubject } from "./subjects.js";

/**
 * Carrying out the signature and attachment part of a plan, after the images are copied:
 * signatures are made once per subject and identity, then the same bytes are written to every
 * destination that needs them (blobs first, the manifest and its tag last).
 */

/**
 * - `signed`: a new signature was made and written here;
 * - `written`: existing content (a signature, an attestation, an SBOM, a referrer) was written;
 * - `conflict`: the destination holds another document under the tag; left alone;
 * - `skipped`: the promoted image is not at this destination (its copy failed), so nothing was
 *   attached to it;
 * - `failed`: see `error`.
 */
export type AttachmentStatus = "signed" | "written" | "conflict" | "skipped" | "failed";

export interface AttachmentOutcome {
  readonly target: SignatureTarget;
  readonly subject: Digest;
  /** `subjects` when the promoted digest itself could not be read to plan its signatures. */
  readonly kind: WorkItemKind | "subjects";
  readonly tag?: Tag;
  readonly destination: string;
  readonly status: AttachmentStatus;
  /** The digest of what was written. */
  readonly digest?: Digest;
  readonly error?: Problem;
}

/** Promoted digests whose signatures are made and written at once, by default. */
export const DEFAULT_SIGNATURE_OPS = 8;

export interface ExecuteAttachmentsOptions {
  readonly provider: RepositoryOpener;
  /** Needed when the plan has `sign` items. */
  readonly signer?: ImageSigner;
  /** Whether the promoted digest is at a destination after the copy; writes go only there. */
  readonly isPresent?: (target: SignatureTarget, destinationKey: string) => boolean;
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
  /** Promoted digests worked on at once. */
  readonly concurrency?: number;
  /**
   * Slots shared with other calls, instead of `concurrency`: a pipelined promotion signs each
   * repository group as soon as its copies are done, and the run's bound on signer calls and
   * signature writes (`--max-signature-ops`) holds across all of them.
   */
  readonly slots?: Semaphore;
  /** Time source for the bundle layout's `org.opencontainers.image.created`. */
  readonly now?: () => Date;
}

interface Context {
  readonly options: ExecuteAttachmentsOptions;
  readonly call: CallOptions;
  readonly cache: BlobCache;
  readonly logger: Logger;
  /**
   * Each statement signed once per run, by statement digest: the attestation referrer and the
   * `.att` layer of a subject carry the same envelope.
   */
  readonly signedStatements: Map<Digest, Promise<SerializedBundle>>;
}

export async function executeAttachments(
  plan: AttachmentPlan,
  options: ExecuteAttachmentsOptions,
): Promise<AttachmentOutcome[]> {
  const context: Context = {
    options,
    call: options.signal ? { signal: options.signal } : {},
    cache: new BlobCache(MAX_SIGNATURE_LAYER_BYTES),
    logger: options.logger ?? silentLogger,
    signedStatements: new Map(),
  };
  const results: AttachmentOutcome[][] = new Array<AttachmentOutcome[]>(plan.works.length);
  // No signal for the slots' waits: after an abort each remaining work still reports its items
  // as aborted (executeWork checks the signal itself).
  const slots = options.slots ?? new Semaphore(options.concurrency ?? DEFAULT_SIGNATURE_OPS);
  await Promise.all(
    plan.works.map(async (work, index) => {
      const release = await slots.acquire();
      try {
        results[index] = await executeWork(work, context);
      } finally {
        release();
      }
    }),
  );
  return results.flat();
}

async function executeWork(work: AttachmentWork, context: Context): Promise<AttachmentOutcome[]> {
  const { target } = work;
  const outcomes: AttachmentOutcome[] = [];
  // A target whose planning failed (for some of its subjects, or all) fails at each destination;
  // what was planned for its other subjects is written all the same (plan-attachments.ts).
  const problem = work.problem;
  if (problem) {
    for (const destination of target.destinations) {
      outcomes.push({
        target,
        subject: target.digest,
        kind: "subjects",
        destination: destination.key,
        status: context.options.isPresent?.(target, destination.key) === false ? "skipped" : "failed",
        error: problem,
      });
    }
  }
  for (const { subject, items } of work.subjects) {
    for (const item of items) {
      if (context.options.signal?.aborted) {
        outcomes.push(...abortedOutcomes(target, subject, item));
        continue;
      }
      outcomes.push(...(await executeItem(target, subject, item, context)));
    }
  }
  return outcomes;
}

function abortedOutcomes(
  target: SignatureTarget,
  subject: SignatureSubject,
  item: WorkItem,
): AttachmentOutcome[] {
  return item.writeTo.map((destination) => ({
    target,
    subject: subject.digest,
    kind: item.kind,
    ...(item.tag ? { tag: item.tag } : {}),
    destination,
    status: "failed",
    error: { code: "aborted", message: "the run was aborted" },
  }));
}

async function executeItem(
  target: SignatureTarget,
  subject: SignatureSubject,
  item: WorkItem,
  context: Context,
): Promise<AttachmentOutcome[]> {
  const base = {
    target,
    subject: subject.digest,
    kind: item.kind,
    ...(item.tag ? { tag: item.tag } : {}),
  };
  const outcomes: AttachmentOutcome[] = [];
  for (const entry of item.unreadable) {
    outcomes.push({
      ...base,
      destination: entry.key,
      status: "failed",
      error: { code: "attachment-unreadable", message: entry.message },
    });
  }
  for (const entry of item.conflicts) {
    outcomes.push({
      ...base,
      destination: entry.key,
      status: "conflict",
      digest: entry.current,
      error: {
        code: "attachment-conflict",
        message: `${item.tag ?? item.kind} holds ${entry.current}, not staging's ${item.digest ?? "document"}; left alone`,
      },
    });
  }
  const present = (key: string) => context.options.isPresent?.(target, key) ?? true;
  const writeTo = item.writeTo.filter(present);
  for (const key of item.writeTo.filter((key) => !present(key))) {
    outcomes.push({ ...base, destination: key, status: "skipped" });
  }
  if (writeTo.length === 0) return outcomes;

  let content: PlannedContent;
  let status: AttachmentStatus = "written";
  try {
    if (item.action === "sign") {
      content = await signedContent(subject, item, context);
      status = "signed";
    } else if (item.content) {
      content = item.content;
    } else {
      return outcomes;
    }
  } catch (error) {
    if (error instanceof AbortedError) throw error;
    const failure = problemOf(error);
    context.logger.log("error", `signing ${subject.digest} failed`, { error: failure.message });
    for (const key of writeTo) outcomes.push({ ...base, destination: key, status: "failed", error: failure });
    return outcomes;
  }
  const digest = content.kind === "manifest" ? content.manifest.digest : content.digest;
  const stores = new Map(
    target.destinations
      .filter((destination) => writeTo.includes(destination.key))
      .map((destination) => [
        destination.key,
        openOnSide(context.options.provider, destination.location, "destination"),
      ]),
  );
  const results = await writeContent(content, item, stores, context);
  for (const key of writeTo) {
    const error = results.get(key);
    outcomes.push(
      error === undefined
        ? { ...base, destination: key, status, digest }
        : { ...base, destination: key, status: "failed", digest, error },
    );
  }
  if (status === "signed") {
    context.logger.log("info", `signed ${subject.digest}`, {
      image: target.image,
      kind: item.kind,
      signature: digest,
      destinations: writeTo.length,
    });
  }
  return outcomes;
}

/** Makes the new signature(s) of a `sign` item and the content that carries them. */
async function signedContent(
  subject: SignatureSubject,
  item: WorkItem,
  context: Context,
): Promise<PlannedContent> {
  const signer = context.options.signer;
  if (!signer) throw new SignError("sign-failed", "the plan asks for a signature but no signer was given");
  const identities = item.sign?.identities ?? [];
  const statements = item.sign?.statements ?? [];
  if (item.kind === "attestation") {
    const statement = statements[0];
    if (statement === undefined) throw new SignError("sign-failed", "no statement to sign");
    const bytes = new TextEncoder().encode(JSON.stringify(await signedStatement(statement, signer, context)));
    checkRecognised(
      await signer.ownSignatures.attestation(
        bytes,
        subject.digest,
        statement.predicateType,
        statement.identity,
      ),
      signer,
    );
    if (!subject.descriptor)
      throw new SignError("sign-failed", `no descriptor of ${subject.digest} for the attestation subject`);
    const created = (context.options.now?.() ?? new Date()).toISOString();
    const built = buildBundleReferrer(bytes, subject.descriptor, created, statement.predicateType);
    return {
      kind: "manifest",
      manifest: built.manifest,
      blobs: built.blobs.map((blob) => ({ descriptor: blob.descriptor, bytes: blob.bytes })),
    };
  }
  if (item.kind === "bundle") {
    const identity = identities[0];
    if (identity === undefined) throw new SignError("sign-failed", "no identity to sign as");
    const bundle = await signer.signStatement(signingStatement(subject.digest, identity), context.call);
    const bytes = new TextEncoder().encode(JSON.stringify(bundle));
    checkRecognised(await signer.ownSignatures.bundle(bytes, subject.digest, identity), signer);
    const created = (context.options.now?.() ?? new Date()).toISOString();
    if (!subject.descriptor)
      throw new SignError("sign-failed", `no descriptor of ${subject.digest} for the bundle subject`);
    const built = buildBundleReferrer(bytes, subject.descriptor, created);
    return {
      kind: "manifest",
      manifest: built.manifest,
      blobs: built.blobs.map((blob) => ({ descriptor: blob.descriptor, bytes: blob.bytes })),
    };
  }
  const added = [];
  for (const identity of identities) {
    const payload = simpleSigningPayload(identity, subject.digest);
    const annotations = await signer.signPayload(payload, context.call);
    const layer = signatureLayer(payload, annotations);
    checkRecognised(await signer.ownSignatures.layer(layer.descriptor, subject.digest, identity), signer);
    added.push(layer);
  }
  for (const statement of statements) {
    const bundle = await signedStatement(statement, signer, context);
    const { bundleFromJSON } = await import("@sigstore/bundle");
    const layer = attestationLayer(
      envelopeBytesOfBundle(bundle),
      statement.predicateType,
      cosignMaterialAnnotations(bundleFromJSON(bundle)),
    );
    checkRecognised(
      await signer.ownSignatures.attestationLayer(
        layer.descriptor,
        layer.bytes,
        subject.digest,
        statement.predicateType,
        statement.identity,
      ),
      signer,
    );
    added.push(layer);
  }
  const keep = item.sign?.keep ?? [];
  const built = buildLayerSet([
    ...keep.map((layer) => layer.descriptor),
    ...added.map((layer) => layer.descriptor),
  ]);
  const blobs: PlannedBlob[] = [
    { descriptor: built.config.descriptor, bytes: built.config.bytes },
    ...keep.map((layer) => ({ descriptor: layer.descriptor, from: layer.from })),
    ...added.map((layer) => ({ descriptor: layer.descriptor, bytes: layer.bytes })),
  ];
  return { kind: "manifest", manifest: built.manifest, blobs };
}

/** The bundle of a statement, signed on first use and shared for the rest of the run. */
function signedStatement(
  statement: PlannedStatement,
  signer: ImageSigner,
  context: Context,
): Promise<SerializedBundle> {
  const key = digestOf(statement.bytes);
  let signed = context.signedStatements.get(key);
  if (!signed) {
    signed = signer.signStatement(statement.bytes, context.call);
    context.signedStatements.set(key, signed);
  }
  return signed;
}

/**
 * A signature just made must be one the next run recognises as ours (own-signatures.ts);
 * otherwise every run would add another (a keyless certificate identity or trusted root that
 * does not match the token and Fulcio used). Nothing is written then.
 */
function checkRecognised(verdict: OwnVerdict, signer: ImageSigner): void {
  if (verdict.ok) return;
  throw new SignError(
    "sign-failed",
    `${signer.description}: the new signature would not be recognised as ours on the next run (${verdict.reason}); check the trusted root, certificate identity and issuer configured for signing`,
  );
}

/** Writes content to each destination; the error per destination key that failed. */
async function writeContent(
  content: PlannedContent,
  item: WorkItem,
  stores: ReadonlyMap<string, CopyDestinationStore>,
  context: Context,
): Promise<Map<string, Problem>> {
  const failures = new Map<string, Problem>();
  if (content.kind === "manifest") {
    const reference = item.tag ?? content.manifest.digest;
    await Promise.all(
      [...stores].map(async ([key, store]) => {
        try {
          for (const blob of content.blobs) await ensureBlob(store, blob, context.cache, context.call);
          await store.putManifest(content.manifest, reference, context.call);
        } catch (error) {
          if (context.options.signal?.aborted) throw error;
          failures.set(key, problemOf(error));
        }
      }),
    );
    return failures;
  }
  const entries = [...stores];
  const copies = await copyGraphs(
    [
      {
        id: `${item.kind}@${content.digest}`,
        source: content.from,
        digest: content.digest,
        destinations: entries.map(([, store]) => ({ store, tags: item.tag ? [item.tag] : [] })),
      },
    ],
    {
      ...(context.options.signal ? { signal: context.options.signal } : {}),
      logger: context.logger,
    },
  );
  // Read once for every destination that needs it re-stored; a failed read is not kept.
  let referrer: ManifestContent | undefined;
  for (const copy of copies) {
    const entry = entries[copy.destinationIndex];
    if (!entry) continue;
    const [key, store] = entry;
    if (copy.status === "failed" || copy.status === "aborted") {
      failures.set(key, problemOf(copy.error ?? new Error(`copy ${copy.status}`)));
      continue;
    }
    // A referrer already stored but missing from the destination's referrers list (copied by a
    // tool that did not maintain the tag-schema index): storing it again records it there.
    if (!item.tag && copy.status !== "copied") {
      try {
        referrer ??= await content.from.getManifest(content.digest, context.call);
        if (referrer) await store.putManifest(referrer, content.digest, context.call);
      } catch (error) {
        if (context.options.signal?.aborted) throw error;
        failures.set(key, problemOf(error));
      }
    }
  }
  return failures;
}
