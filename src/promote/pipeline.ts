import { Semaphore } from "../concurrency/index.js";
import { CopyRun, type CopyOutcome } from "../copy/index.js";
import { findTagConflicts, validate, type ManifestSet, type ValidationResult } from "../manifest/index.js";
import {
  decidePlan,
  destinationQuestions,
  indexConflicts,
  promotionEdges,
  sourceQuestions,
  sourceVerdictKey,
  type ConflictIndex,
  type EdgeOutcome,
  type PromotionEdge,
  type PromotionPlan,
  type RepositoryState,
} from "../plan/index.js";
import { isGoogleRegistryHost, RepositoryKeyCache } from "../reference/index.js";
import {
  canonicalRegistries,
  DEFAULT_SIGNATURE_OPS,
  judgeSourceSignatures,
  planAttachments,
  signatureTargets,
  type AttachmentOutcome,
  type AttachmentPlan,
  type AttachmentWork,
  type SourceVerdict,
} from "../sign/index.js";
import { executePlan, type ExecutionResult } from "./execute.js";
import { ManifestMapHints, observeRepositories } from "./inventory.js";
import {
  isIndexIn,
  sourceCheckRequests,
  withStagingFacts,
  type PromoteOptions,
  type PromotionResult,
  type SourceSignatureReport,
} from "./promote.js";
import { executeSignatures } from "./signatures.js";

/**
 * A promotion without phase barriers (issue 19): the edges fall into groups that share no
 * repository (a source and the destinations it feeds), and each group goes through the
 * promotion on its own: read its destinations, then the sources they lack, decide, copy (tags
 * last) while reading staging's attachments. Signatures and attachments are written in one step
 * for the run once every copy ended (so `--max-signature-ops` bounds the whole run, as before).
 * A group's copy starts as soon as its own facts are known, not after
 * every repository of the run was read; what bounds the work is the transport's per-host limits
 * (registry/transport/host-limits.ts) and the copy run's limits, so a slow host holds back only
 * the groups that use it.
 *
 * Why groups, and not single edges: every read of a repository happens before this run writes
 * to it, exactly as in a plan made first (a repository that is the destination of one project
 * and the source of another is in one group, read before either is written). So the decisions
 * are those `planPromotion` makes over the same registry state: the returned plan is decided
 * again over everything read, and is the plan a dry run prints.
 */
export async function promotePipelined(set: ManifestSet, options: PromoteOptions): Promise<PromotionResult> {
  const validation = validate(set);
  const all = [...promotionEdges(set)];
  const edges = options.filter ? all.filter(options.filter) : all;
  const conflicts = indexConflicts(findTagConflicts(set.manifests));
  return pipelineEdges(
    edges,
    conflicts,
    { ...options, canonicalRegistries: canonicalRegistries(set), declaredEdges: all },
    validation,
  );
}

/** The edges that must go through the promotion together: those connected by a repository. */
export function repositoryGroups(
  edges: readonly PromotionEdge[],
  keys: RepositoryKeyCache,
): PromotionEdge[][] {
  // Union-find over repository keys, whatever side a repository is on.
  const parent = new Map<string, string>();
  const root = (key: string): string => {
    let at = key;
    for (let up = parent.get(at); up !== undefined && up !== at; up = parent.get(at)) {
      const grand = parent.get(up) ?? up;
      parent.set(at, grand);
      at = grand;
    }
    if (!parent.has(at)) parent.set(at, at);
    return at;
  };
  for (const edge of edges) {
    const a = root(keys.of(edge.source));
    const b = root(keys.of(edge.destination));
    if (a !== b) parent.set(b, a);
  }
  const groups = new Map<string, PromotionEdge[]>();
  for (const edge of edges) {
    const key = root(keys.of(edge.source));
    let group = groups.get(key);
    if (!group) groups.set(key, (group = []));
    group.push(edge);
  }
  return [...groups.values()];
}

/** Digests of a group whose attachments are read at once (each a few requests in a row). */
const ATTACHMENT_READS_IN_PROGRESS = 64;

interface GroupResult {
  readonly execution: ExecutionResult;
  readonly attachments?: AttachmentPlan;
}

async function pipelineEdges(
  edges: readonly PromotionEdge[],
  conflicts: ConflictIndex,
  options: PromoteOptions,
  validation: ValidationResult,
): Promise<PromotionResult> {
  const started = performance.now();
  const keys = new RepositoryKeyCache();
  const observe = {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
  };
  const manifestMaps = new ManifestMapHints(options.manifestMapHosts ?? isGoogleRegistryHost);
  const destinations = new Map<string, RepositoryState>();
  const sources = new Map<string, RepositoryState>();
  const refusals = new Map<string, string>();
  const verdicts: SourceVerdict[] = [];
  const signatures = options.signatures;
  const attachmentMode = signatures?.attachments ?? "none";
  const withAttachments =
    signatures !== undefined && (signatures.signer !== undefined || attachmentMode !== "none");
  const copyRun = new CopyRun({
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.copyConcurrency === undefined ? {} : { concurrency: options.copyConcurrency }),
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
  });
  // --max-signature-ops bounds the signer's calls and the signature writes of the whole run,
  // though each group signs as soon as its own copies are done.
  const signatureSlots = new Semaphore(signatures?.maxSignatureOps ?? DEFAULT_SIGNATURE_OPS);
  let inventoryDone = started;
  let signaturesDone = started;
  let planMs = 0;
  const groups = repositoryGroups(edges, keys);
  options.logger?.log("info", "promoting, pipelined", { groups: groups.length, edges: edges.length });

  const promoteGroup = async (group: readonly PromotionEdge[]): Promise<GroupResult> => {
    const { destinations: destinationQs } = destinationQuestions(group, keys);
    const observedDestinations = await observeRepositories(destinationQs, options.provider, "destination", {
      ...observe,
      manifestMaps,
    });
    const sourceQs = sourceQuestions(group, observedDestinations, conflicts, keys);
    const observedSources = await observeRepositories(sourceQs, options.provider, "source", {
      ...observe,
      manifestMaps,
    });
    for (const [key, state] of observedDestinations) destinations.set(key, state);
    for (const [key, state] of observedSources) sources.set(key, state);
    inventoryDone = Math.max(inventoryDone, performance.now());
    const inventory = { destinations: observedDestinations, sources: observedSources };
    const decideStarted = performance.now();
    let plan = decidePlan(group, inventory, conflicts, keys);
    planMs += performance.now() - decideStarted;

    let groupVerdicts: readonly SourceVerdict[] = [];
    if (signatures?.sourcePolicy) {
      const mode = signatures.sourcePolicy.mode ?? "required";
      const requests = sourceCheckRequests(plan.edges, signatures.sourcePolicy, keys);
      groupVerdicts = await judgeSourceSignatures(requests, { provider: options.provider, mode, ...observe });
      verdicts.push(...groupVerdicts);
      const groupRefusals = new Map<string, string>();
      for (const verdict of groupVerdicts) {
        if (verdict.status === "refused") groupRefusals.set(verdict.request.key, verdict.reason ?? "refused");
      }
      for (const [key, reason] of groupRefusals) refusals.set(key, reason);
      if (groupRefusals.size > 0) plan = decidePlan(group, inventory, conflicts, keys, groupRefusals);
    }

    // Reading staging's attachments (and what the destinations hold of ours) goes on while the
    // images are copied; writing them waits for the copy (below).
    const reading = withAttachments
      ? planAttachments(
          signatureTargets(plan.edges, {
            ...(signatures.identity === undefined ? {} : { identity: signatures.identity }),
            ...(options.canonicalRegistries ? { canonicalRegistries: options.canonicalRegistries } : {}),
            ...(options.declaredEdges ? { declared: options.declaredEdges } : {}),
            isIndex: (repositoryKey, digest) => isIndexIn(inventory, repositoryKey, digest),
          }),
          {
            provider: options.provider,
            ...(signatures.signer ? { signer: signatures.signer } : {}),
            ...(signatures.format ? { format: signatures.format } : {}),
            attachments: attachmentMode,
            ...(signatures.signChildren === undefined ? {} : { signChildren: signatures.signChildren }),
            ...(signatures.attest ? { attest: withStagingFacts(signatures.attest, groupVerdicts) } : {}),
            ...observe,
            // Digests read at once: the per-host limits bound the requests, not this (issue 19).
            concurrency: options.concurrency ?? ATTACHMENT_READS_IN_PROGRESS,
          },
        ).then((planned) => {
          signaturesDone = Math.max(signaturesDone, performance.now());
          return planned;
        })
      : undefined;
    const execution = await executePlan(plan, {
      provider: options.provider,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
      copyRun,
    });
    const attachments = await reading;
    if (!attachments) return { execution };
    // Signed and attached as soon as this group's copies are done (not after every group's):
    // only digests now in place at a destination get their signatures there (signatures.ts).
    // A group holds every edge of its source repositories, so each promoted digest is signed
    // by exactly one group.
    const signed = await executeSignatures(attachments, execution, {
      provider: options.provider,
      ...(signatures?.signer ? { signer: signatures.signer } : {}),
      slots: signatureSlots,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
    return { execution: signed, attachments };
  };

  // Every group at once: the per-host limits of the transport and the copy run's limits bound
  // the requests; a group waits only for the hosts it uses.
  const results = await Promise.all(groups.map(promoteGroup));

  const inventory = { destinations, sources };
  const decideStarted = performance.now();
  // The whole plan, decided over everything read: the same decisions the groups made.
  const plan: PromotionPlan = decidePlan(
    edges,
    inventory,
    conflicts,
    keys,
    refusals.size > 0 ? refusals : undefined,
  );
  planMs += performance.now() - decideStarted;
  const byEdge = new Map<PromotionEdge, EdgeOutcome>();
  const copies: CopyOutcome[] = [];
  const works: AttachmentWork[] = [];
  const attachmentOutcomes: AttachmentOutcome[] = [];
  for (const { execution, attachments } of results) {
    for (const outcome of execution.outcomes) byEdge.set(outcome.edge, outcome);
    copies.push(...execution.copies);
    if (attachments) works.push(...attachments.works);
    if (execution.attachments) attachmentOutcomes.push(...execution.attachments);
  }
  copyRun.finish();
  const outcomes = plan.edges.map(
    ({ edge, decision }): EdgeOutcome =>
      byEdge.get(edge) ?? {
        edge,
        decision,
        outcome: "failed",
        error: { code: "not-run", message: "the copy for this edge did not run" },
      },
  );
  const first = results.find((result) => result.attachments)?.attachments;
  const attachments: AttachmentPlan | undefined = withAttachments
    ? {
        format: first?.format ?? signatures.format ?? "cosign",
        mode: attachmentMode,
        ...(first?.signer === undefined ? {} : { signer: first.signer }),
        ...(first?.attestations === undefined ? {} : { attestations: first.attestations }),
        works,
      }
    : undefined;
  // Verdicts in the order of the edges that asked for them, as when the plan is made first.
  const rank = new Map<string, number>();
  for (const edge of edges) {
    const key = sourceVerdictKey(keys.of(edge.source), edge.digest);
    if (!rank.has(key)) rank.set(key, rank.size);
  }
  verdicts.sort((a, b) => (rank.get(a.request.key) ?? 0) - (rank.get(b.request.key) ?? 0));
  const sourceSignatures: SourceSignatureReport | undefined = signatures?.sourcePolicy
    ? { mode: signatures.sourcePolicy.mode ?? "required", verdicts }
    : undefined;
  const execution: ExecutionResult = {
    outcomes,
    copies,
    ...(attachments ? { attachments: attachmentOutcomes } : {}),
  };
  const ended = performance.now();
  return {
    validation,
    plan,
    inventory,
    ...(attachments ? { attachments } : {}),
    ...(sourceSignatures ? { sourceSignatures } : {}),
    execution,
    // The phases overlap: each is timed from the start of the run until its last part ended.
    timings: {
      inventoryMs: inventoryDone - started,
      planMs,
      ...(withAttachments ? { signaturesMs: signaturesDone - started } : {}),
      executeMs: ended - started,
    },
  };
}
