import { isGoogleRegistryHost, RepositoryKeyCache } from "../reference/index.js";
import type { CopyEvent } from "../copy/index.js";
import { silentLogger, type Logger } from "../log.js";
import { findTagConflicts, validate, type ManifestSet, type ValidationResult } from "../manifest/index.js";
import {
  decidePlan,
  destinationQuestions,
  indexConflicts,
  promotionEdges,
  sourceQuestions,
  sourceVerdictKey,
  type Inventory,
  type PlannedEdge,
  type PromotionEdge,
  type PromotionPlan,
} from "../plan/index.js";
import type { Digest } from "../reference/index.js";
import type { RepositoryOpener } from "../registry/index.js";
import {
  judgeSourceSignatures,
  planAttachments,
  ruleFor,
  canonicalRegistries,
  signatureTargets,
  type AttachmentMode,
  type AttachmentPlan,
  type AttestOptions,
  type ImageSigner,
  type SignatureFormat,
  type SourceCheckRequest,
  type SourcePolicy,
  type SourceSignatureMode,
  type SourceVerdict,
} from "../sign/index.js";
import { executePlan, type ExecutionResult } from "./execute.js";
import { ManifestMapHints, observeRepositories } from "./inventory.js";
import { executeSignatures } from "./signatures.js";

export interface PlanPromotionOptions {
  readonly provider: RepositoryOpener;
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
  /** Inventory requests in flight across repositories (per-host limits apply below). */
  readonly concurrency?: number;
  /** Keep only some edges (sharding, or the digests of one change). */
  readonly filter?: (edge: PromotionEdge) => boolean;
  /** Signing, carrying staging's attachments, and the source signature policy. */
  readonly signatures?: SignatureOptions;
  /**
   * Each project's canonical registry (its manifest's first destination) for default signing
   * identities; `planPromotion` fills it from the manifests.
   */
  readonly canonicalRegistries?: ReadonlyMap<string, string>;
  /**
   * Every edge the manifests declare, when `filter` keeps only some: a digest signed for some of
   * its destinations first looks for our signature at the others (read only, never written), so
   * every mirror holds the same one. `planPromotion` fills it from the manifests.
   */
  readonly declaredEdges?: readonly PromotionEdge[];
  /**
   * Registry hosts expected to list their manifests with their tags (one request per
   * repository instead of one per edge; registry/remote/manifest-map.ts). Default: Google's
   * (`gcr.io`, `*.gcr.io`, `*-docker.pkg.dev`). Others are learned from their answers.
   */
  readonly manifestMapHosts?: (host: string) => boolean;
}

/**
 * What promotion does about signatures (docs/signing.md). Without a signer nothing is signed;
 * `attachments` defaults to `none` here (the CLI's default is `copied`).
 */
export interface SignatureOptions {
  readonly signer?: ImageSigner;
  readonly format?: SignatureFormat;
  readonly attachments?: AttachmentMode;
  /** Sign each image of an index too (default true). */
  readonly signChildren?: boolean;
  /** `--sign-identity`: the canonical registry prefix (or `{image}` template) signatures name. */
  readonly identity?: string;
  /**
   * Check what staging carries: refuse edges whose source digest is not signed as the policy
   * requires (its `mode`: `required`, or `if-present`).
   */
  readonly sourcePolicy?: SourcePolicy;
  /**
   * Promoted digests whose signatures are made and written at once (`--max-signature-ops`;
   * default 8). Bounds the signer's calls (a keyless signature is a Fulcio and a Rekor request)
   * and the signature writes in flight.
   */
  readonly maxSignatureOps?: number;
  /**
   * With a signer: also write the promotion record and the VSA of every signed subject
   * (docs/signing.md, "Promotion attestations"); the facts come from the caller.
   */
  readonly attest?: AttestOptions;
}

/** What the source policy found, per source digest it judged (the plan's "source signatures"). */
export interface SourceSignatureReport {
  readonly mode: SourceSignatureMode;
  readonly verdicts: readonly SourceVerdict[];
}

export interface PlannedPromotion {
  readonly validation: ValidationResult;
  readonly plan: PromotionPlan;
  readonly inventory: { readonly destinations: Inventory; readonly sources: Inventory };
  /** Signatures and attachments to write, when signing or carrying is on. */
  readonly attachments?: AttachmentPlan;
  /** The source signature policy's verdicts, when a policy is in force. */
  readonly sourceSignatures?: SourceSignatureReport;
  readonly timings: { readonly inventoryMs: number; readonly planMs: number; readonly signaturesMs?: number };
}

/**
 * Reads what the manifests need from the registries and decides every edge. Writes nothing.
 * Invalid manifest entries are left out (and reported by `validation`); everything valid is
 * planned, so one bad entry does not block the rest.
 */
export async function planPromotion(
  set: ManifestSet,
  options: PlanPromotionOptions,
): Promise<PlannedPromotion> {
  const logger = options.logger ?? silentLogger;
  const validation = validate(set);
  const keys = new RepositoryKeyCache();
  const all = [...promotionEdges(set)];
  const edges: PromotionEdge[] = [];
  for (const edge of all) if (!options.filter || options.filter(edge)) edges.push(edge);
  const conflicts = indexConflicts(findTagConflicts(set.manifests));
  return planEdges(
    edges,
    conflicts,
    { ...options, logger, canonicalRegistries: canonicalRegistries(set), declaredEdges: all },
    keys,
    validation,
  );
}

/** Planning from edges directly (a saved plan re-checked before it runs). */
export async function planEdges(
  edges: readonly PromotionEdge[],
  conflicts: ReturnType<typeof indexConflicts>,
  options: PlanPromotionOptions,
  keys = new RepositoryKeyCache(),
  validation: ValidationResult = EMPTY_VALIDATION,
): Promise<PlannedPromotion> {
  const observe = {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
  };
  const manifestMaps = new ManifestMapHints(options.manifestMapHosts ?? isGoogleRegistryHost);
  const started = performance.now();
  const { destinations: destinationQs } = destinationQuestions(edges, keys);
  options.logger?.log("info", "reading destinations", {
    repositories: destinationQs.size,
    edges: edges.length,
  });
  const destinations = await observeRepositories(destinationQs, options.provider, "destination", {
    ...observe,
    manifestMaps,
  });
  const sourceQs = sourceQuestions(edges, destinations, conflicts, keys);
  options.logger?.log("info", "reading sources", { repositories: sourceQs.size });
  const sources = await observeRepositories(sourceQs, options.provider, "source", {
    ...observe,
    manifestMaps,
  });
  const inventoryMs = performance.now() - started;
  const planStarted = performance.now();
  const inventory = { destinations, sources };
  let plan = decidePlan(edges, inventory, conflicts, keys);
  const planMs = performance.now() - planStarted;
  const signatures = options.signatures;
  if (!signatures) return { validation, plan, inventory, timings: { inventoryMs, planMs } };

  const signaturesStarted = performance.now();
  let sourceSignatures: SourceSignatureReport | undefined;
  if (signatures.sourcePolicy) {
    const mode = signatures.sourcePolicy.mode ?? "required";
    const requests = sourceCheckRequests(plan.edges, signatures.sourcePolicy, keys);
    options.logger?.log("info", "checking source signatures", { digests: requests.length, mode });
    const verdicts = await judgeSourceSignatures(requests, { provider: options.provider, mode, ...observe });
    sourceSignatures = { mode, verdicts };
    const refusals = new Map<string, string>();
    for (const verdict of verdicts) {
      if (verdict.status === "refused") refusals.set(verdict.request.key, verdict.reason ?? "refused");
    }
    if (refusals.size > 0) plan = decidePlan(edges, inventory, conflicts, keys, refusals);
  }
  let attachments: AttachmentPlan | undefined;
  const mode = signatures.attachments ?? "none";
  if (signatures.signer || mode !== "none") {
    const targets = signatureTargets(plan.edges, {
      ...(signatures.identity === undefined ? {} : { identity: signatures.identity }),
      ...(options.canonicalRegistries ? { canonicalRegistries: options.canonicalRegistries } : {}),
      ...(options.declaredEdges ? { declared: options.declaredEdges } : {}),
      isIndex: (repositoryKey, digest) => isIndexIn(inventory, repositoryKey, digest),
    });
    options.logger?.log("info", "reading signatures and attachments", { digests: targets.length });
    attachments = await planAttachments(targets, {
      provider: options.provider,
      ...(signatures.signer ? { signer: signatures.signer } : {}),
      ...(signatures.format ? { format: signatures.format } : {}),
      attachments: mode,
      ...(signatures.signChildren === undefined ? {} : { signChildren: signatures.signChildren }),
      ...(signatures.attest
        ? { attest: withStagingFacts(signatures.attest, sourceSignatures?.verdicts ?? []) }
        : {}),
      ...observe,
    });
  }
  return {
    validation,
    plan,
    inventory,
    ...(attachments ? { attachments } : {}),
    ...(sourceSignatures ? { sourceSignatures } : {}),
    timings: { inventoryMs, planMs, signaturesMs: performance.now() - signaturesStarted },
  };
}

/**
 * Staging's verified build provenance and signatures go into the attestations of what they were
 * verified for: the promotion record's `build`, the VSA's `inputAttestations` and build level.
 * A target's source digest's verdict serves the digest and each image of its index (the index
 * names its images by digest, so what proves the index proves them).
 */
export function withStagingFacts(attest: AttestOptions, verdicts: readonly SourceVerdict[]): AttestOptions {
  const byKey = new Map<string, SourceVerdict>();
  for (const verdict of verdicts) if (verdict.status !== "refused") byKey.set(verdict.request.key, verdict);
  if (byKey.size === 0) return attest;
  const collect = attest.collectFacts;
  return {
    ...attest,
    collectFacts: async (targets, signal) => {
      const given = collect ? await collect(targets, signal) : undefined;
      return (target, subject) => {
        const facts = given?.(target, subject) ?? {};
        const verdict = byKey.get(sourceVerdictKey(target.sourceKey, target.digest));
        if (!verdict) return facts;
        const build = facts.build ?? verdict.build;
        const inputs = [...(facts.inputs ?? []), ...verdict.inputs];
        return { ...facts, ...(build ? { build } : {}), ...(inputs.length > 0 ? { inputs } : {}) };
      };
    },
  };
}

/** The source digests a policy applies to: those this run would copy or tag. */
export function sourceCheckRequests(
  edges: readonly PlannedEdge[],
  policy: SourcePolicy,
  keys: RepositoryKeyCache,
): SourceCheckRequest[] {
  const requests = new Map<string, SourceCheckRequest>();
  for (const { edge, decision } of edges) {
    if (decision.kind !== "copy" && decision.kind !== "add-tag") continue;
    const key = sourceVerdictKey(keys.of(edge.source), edge.digest);
    if (requests.has(key)) continue;
    const rule = ruleFor(policy, edge.sourceRegistry.name, edge.project);
    if (rule) requests.set(key, { location: edge.source, key, digest: edge.digest, rule });
  }
  return [...requests.values()];
}

export function isIndexIn(
  inventory: { readonly destinations: Inventory; readonly sources: Inventory },
  repositoryKey: string,
  digest: Digest,
): boolean | undefined {
  for (const side of [inventory.destinations, inventory.sources]) {
    const state = side.get(repositoryKey);
    if (state?.kind === "observed" && state.digests.has(digest) && state.indexes !== undefined) {
      return state.indexes.has(digest);
    }
  }
  return undefined;
}

const EMPTY_VALIDATION: ValidationResult = validate({ manifests: [], findings: [] });

export interface PromoteOptions extends PlanPromotionOptions {
  /** Write to the registries. Without it the run is a dry run. */
  readonly confirm: boolean;
  /** Blob transfers in flight (the copy engine's `concurrency`). */
  readonly copyConcurrency?: number;
  readonly onEvent?: (event: CopyEvent) => void;
}

export interface PromotionResult extends PlannedPromotion {
  /** Present when `confirm` was given. */
  readonly execution?: ExecutionResult;
  readonly timings: PlannedPromotion["timings"] & { readonly executeMs?: number };
}

/** Plans, and with `confirm` executes, a promotion. */
export async function promote(set: ManifestSet, options: PromoteOptions): Promise<PromotionResult> {
  const planned = await planPromotion(set, options);
  if (!options.confirm) return planned;
  return runPlanned(planned, options);
}

export async function runPlanned(
  planned: PlannedPromotion,
  options: PromoteOptions,
): Promise<PromotionResult> {
  const started = performance.now();
  let execution = await executePlan(planned.plan, {
    provider: options.provider,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.copyConcurrency === undefined ? {} : { concurrency: options.copyConcurrency }),
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
  });
  if (planned.attachments) {
    execution = await executeSignatures(planned.attachments, execution, {
      provider: options.provider,
      ...(options.signatures?.signer ? { signer: options.signatures.signer } : {}),
      ...(options.signatures?.maxSignatureOps === undefined
        ? {}
        : { concurrency: options.signatures.maxSignatureOps }),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
  }
  return { ...planned, execution, timings: { ...planned.timings, executeMs: performance.now() - started } };
}
