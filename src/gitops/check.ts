import { formatBytes, plural } from "../output/quantities.js";
import { RepositoryKeyCache } from "../reference/index.js";
import { describeError, isPromoterError } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import {
  conflictDigests,
  MAX_MANIFEST_FILE_BYTES,
  mergeImages,
  preexistingFindings,
  type Finding,
  type ManifestSet,
  type RegistryPolicy,
  type SourcePosition,
} from "../manifest/index.js";
import {
  loadManifests,
  manifestTreeOf,
  type ManifestInput,
  type ManifestTree,
} from "../manifest-files/index.js";
import {
  countDecisions,
  decisionTotals,
  destinationQuestions,
  type EdgeDecisionKind,
  type PlannedEdge,
  type PromotionEdge,
  totalsText,
} from "../plan/index.js";
import { runBounded } from "../concurrency/index.js";
import { observeRepositories, planPromotion } from "../promote/index.js";
import type { Digest, Tag } from "../reference/index.js";
import { openOnSide, type RepositoryOpener } from "../registry/index.js";
import { diffEdges, PromotedContent } from "./edge-diff.js";
import {
  platformText,
  readImageFacts,
  readImageKind,
  type ImageFacts,
  type ImageKind,
} from "./image-facts.js";
import { loadManifestsAtRevision, type RevisionManifests } from "./revision-manifests.js";
import { previousInSeries, tagSeries } from "./tag-series.js";
import {
  applyVulnerabilityGate,
  reportedDigests,
  type SeverityThreshold,
  type VulnerabilityFinding,
  type VulnerabilityReport,
} from "./vulnerability-report.js";

/**
 * `promoter check`: judges a change to the manifests (a pull request) before it is merged, by
 * comparing the manifests at a base git revision with the working copy. Only what changed is
 * judged: new validation findings in changed files, the new edges against the live registries
 * (tag moves, digests missing in staging), removed edges that production still serves, the size
 * and kind (index or single manifest) of new images, and an optional vulnerability report.
 * Registries are only read.
 */

export type CheckId =
  "validation" | "tag-moves" | "removals" | "image-size" | "kind-changes" | "vulnerabilities";

export const CHECK_TITLES: Readonly<Record<CheckId, string>> = {
  validation: "Manifest validation (changed files)",
  "tag-moves": "New edges against the registries",
  removals: "Removed edges",
  "image-size": "Image size",
  "kind-changes": "Image kind (index or single-platform) in tag series",
  vulnerabilities: "Vulnerability report",
};

/** fail: the change must not be merged as it is; warn: a person should look; skipped: not asked for. */
export type CheckStatus = "pass" | "warn" | "fail" | "skipped";

export interface CheckItem {
  readonly severity: "error" | "warning" | "notice";
  readonly message: string;
  /** Where the working copy (or, for removals, the base revision) says it. */
  readonly position?: SourcePosition;
  readonly hint?: string;
}

export interface CheckResult {
  readonly id: CheckId;
  readonly title: string;
  readonly status: CheckStatus;
  /** One line. */
  readonly summary: string;
  readonly items: readonly CheckItem[];
}

export interface CheckReport {
  readonly base: { readonly revision: string; readonly commit: string };
  /** Manifest and images files that differ between the base and the working copy (absolute). */
  readonly changedFiles: readonly string[];
  readonly edges: { readonly added: number; readonly removed: number };
  /** Decisions for the added edges, as a dry-run promotion would make them. */
  readonly decisions: Readonly<Record<EdgeDecisionKind, number>>;
  readonly checks: readonly CheckResult[];
  /** No check failed. */
  readonly ok: boolean;
}

export interface CheckOptions {
  readonly input: ManifestInput;
  /** The git revision to compare with (`origin/main`, a commit). */
  readonly base: string;
  readonly cwd: string;
  readonly provider: RepositoryOpener;
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
  /** Largest allowed download size of one platform image, in bytes. */
  readonly maxImageSize?: number;
  /** Vulnerability reports of the images the change adds, already parsed. */
  readonly vulnerabilityReports?: readonly { readonly file: string; readonly report: VulnerabilityReport }[];
  readonly vulnerabilityThreshold?: SeverityThreshold;
  /** Removing edges that production serves is reported but does not fail. */
  readonly allowRemovals?: boolean;
  /** An index -> single-platform change in a tag series is reported but does not fail. */
  readonly allowKindChanges?: boolean;
  /** Registry reads in flight. */
  readonly concurrency?: number;
  readonly gitProgram?: string;
  /**
   * Which registries the working copy may name, applied before any request (the CLI passes the
   * operator's entries and the allow-list of the base revision). Default: no policy.
   */
  readonly registryPolicy?: RegistryPolicy;
}

/** Default `--vuln-severity-threshold`. */
export const DEFAULT_VULNERABILITY_THRESHOLD: SeverityThreshold = "HIGH";
/** Items listed per check; the rest are counted. */
export const MAX_ITEMS_PER_CHECK = 200;

export async function runCheck(options: CheckOptions): Promise<CheckReport> {
  const logger = options.logger ?? silentLogger;
  const signal = options.signal;
  const call = signal ? { signal } : {};
  const head = await loadManifests(options.input, {
    cwd: options.cwd,
    ...call,
    ...(options.registryPolicy ? { registryPolicy: options.registryPolicy } : {}),
  });
  const base = await loadManifestsAtRevision(options.input, options.base, {
    cwd: options.cwd,
    ...call,
    ...(options.gitProgram ? { gitProgram: options.gitProgram } : {}),
  });
  const changedFiles = await changedManifestFiles(
    head,
    base.files,
    await manifestTreeOf(options.input, options.cwd),
  );
  const changed = new Set(changedFiles);
  const diff = diffEdges(base.set, head);
  logger.log("info", "change", {
    base: base.commit,
    changedFiles: changedFiles.length,
    addedEdges: diff.added.length,
    removedEdges: diff.removed.length,
  });

  const checks: CheckResult[] = [];
  checks.push(validationCheck(head, base.set, changed));

  const keys = new RepositoryKeyCache();
  const baseContent = PromotedContent.of(base.set);
  let planned: readonly PlannedEdge[] = [];
  if (diff.added.length > 0) {
    const result = await planPromotion(head, {
      provider: options.provider,
      ...call,
      logger,
      ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
      filter: (edge) => !baseContent.covers(edge, keys),
    });
    planned = result.plan.edges;
  }
  checks.push(tagMoveCheck(planned));
  checks.push(await removalCheck(diff.removed, base.unread, options));

  const facts = await readNewImageFacts(planned, baseContent, keys, options);
  checks.push(sizeCheck(facts, options.maxImageSize));
  checks.push(await kindCheck(planned, base, facts, options));
  checks.push(vulnerabilityCheck(options, planned));

  return {
    base: { revision: base.revision, commit: base.commit },
    changedFiles,
    edges: { added: diff.added.length, removed: diff.removed.length },
    decisions: countDecisions(planned),
    checks,
    ok: checks.every((check) => check.status !== "fail"),
  };
}

/**
 * Files of the working copy whose text differs from the base (or that exist on one side only).
 * Read only from inside the tree, as the loader reads them: a refused file counts as changed.
 */
async function changedManifestFiles(
  head: ManifestSet,
  baseFiles: ReadonlyMap<string, string>,
  tree: ManifestTree,
): Promise<string[]> {
  const headFiles = new Set<string>();
  for (const manifest of head.manifests) {
    headFiles.add(manifest.file);
    if (manifest.imagesFile) headFiles.add(manifest.imagesFile);
  }
  const changed = new Set<string>();
  for (const file of headFiles) {
    let text: string | undefined;
    try {
      const read = await tree.read(file, { maxBytes: MAX_MANIFEST_FILE_BYTES });
      text = read.kind === "bytes" ? read.bytes.toString("utf8") : undefined;
    } catch {
      text = undefined;
    }
    if (text !== baseFiles.get(file)) changed.add(file);
  }
  for (const file of baseFiles.keys()) if (!headFiles.has(file)) changed.add(file);
  // Findings of files that did not load (a project whose manifest no longer parses) count too.
  for (const finding of head.findings) {
    if (!headFiles.has(finding.position.file) && baseFiles.get(finding.position.file) === undefined) {
      changed.add(finding.position.file);
    }
  }
  return [...changed].sort();
}

function validationCheck(head: ManifestSet, base: ManifestSet, changed: ReadonlySet<string>): CheckResult {
  const touching = head.findings.filter(
    (finding) =>
      changed.has(finding.position.file) ||
      (finding.related ?? []).some((position) => changed.has(position.file)),
  );
  const old = preexistingFindings(touching, base.findings);
  const items: CheckItem[] = [];
  let preexisting = 0;
  for (const [index, finding] of touching.entries()) {
    if (old[index]) {
      preexisting += 1;
      continue;
    }
    items.push({
      severity: finding.severity,
      message: `${finding.severity}[${finding.rule}]: ${finding.message}`,
      position: finding.position,
      ...(finding.hint ? { hint: finding.hint } : {}),
    });
  }
  const errors = items.filter((item) => item.severity === "error").length;
  const warnings = items.length - errors;
  const older = preexisting > 0 ? `; ${plural(preexisting, "older finding")} in these files not judged` : "";
  return {
    id: "validation",
    title: CHECK_TITLES.validation,
    status: errors > 0 ? "fail" : warnings > 0 ? "warn" : "pass",
    summary:
      changed.size === 0
        ? "no manifest file changed"
        : `${plural(changed.size, "changed file")}: ${plural(errors, "new error")}, ${plural(warnings, "new warning")}${older}`,
    items: capItems(items),
  };
}

/** "1 new edge", "2 new edges". */
function capItems(items: CheckItem[]): CheckItem[] {
  if (items.length <= MAX_ITEMS_PER_CHECK) return items;
  const shown = items.slice(0, MAX_ITEMS_PER_CHECK);
  shown.push({ severity: "notice", message: `${items.length - MAX_ITEMS_PER_CHECK} more not shown` });
  return shown;
}

/** Problems of one kind, grouped so that 22 mirrors refusing the same tag read as one item. */
function groupEdges<T extends { edge: PromotionEdge }>(
  entries: readonly T[],
  keyOf: (entry: T) => string,
): { first: T; destinations: string[] }[] {
  const groups = new Map<string, { first: T; destinations: string[] }>();
  for (const entry of entries) {
    const key = keyOf(entry);
    const group = groups.get(key);
    const name = entry.edge.destinationRegistry.name;
    if (group) {
      if (!group.destinations.includes(name)) group.destinations.push(name);
    } else groups.set(key, { first: entry, destinations: [name] });
  }
  return [...groups.values()];
}

function destinationsText(destinations: readonly string[]): string {
  const [first] = destinations;
  if (destinations.length === 1 && first !== undefined) return first;
  return `${destinations.length} destinations (${destinations.slice(0, 2).join(", ")}${destinations.length > 2 ? ", ..." : ""})`;
}

function edgeName(edge: PromotionEdge): string {
  return `${edge.image}${edge.tag === undefined ? "" : `:${edge.tag}`}`;
}

function tagMoveCheck(planned: readonly PlannedEdge[]): CheckResult {
  const items: CheckItem[] = [];
  const moves = planned.filter((entry) => entry.decision.kind === "refused-tag-move");
  for (const { first, destinations } of groupEdges(moves, ({ edge, decision }) =>
    [
      edge.project,
      edge.image,
      edge.tag,
      edge.digest,
      decision.kind === "refused-tag-move" ? decision.current : "",
    ].join("\u0000"),
  )) {
    const current = first.decision.kind === "refused-tag-move" ? first.decision.current : "";
    items.push({
      severity: "error",
      message: `tag move: ${edgeName(first.edge)} points at ${current} in ${destinationsText(destinations)}; the change asks for ${first.edge.digest}`,
      position: first.edge.position,
      hint: "Tags are never moved: publish the new digest under a new tag, or keep the tag on the digest production has.",
    });
  }
  const missing = planned.filter((entry) => entry.decision.kind === "missing-source");
  for (const { first } of groupEdges(
    missing,
    ({ edge }) => `${edge.project}\u0000${edge.image}\u0000${edge.digest}`,
  )) {
    items.push({
      severity: "error",
      message: `missing in staging: ${first.edge.digest} is not in ${first.edge.sourceRegistry.name}/${first.edge.image}`,
      position: first.edge.position,
      hint: "Push the image to the staging registry first, or fix the digest (copy it from the registry).",
    });
  }
  const conflicts = planned.filter((entry) => entry.decision.kind === "refused-conflict");
  for (const { first, destinations } of groupEdges(conflicts, ({ edge }) =>
    [edge.project, edge.image, edge.tag, edge.digest].join("\u0000"),
  )) {
    const digests =
      first.decision.kind === "refused-conflict" ? conflictDigests(first.decision.conflict) : [];
    items.push({
      severity: "error",
      message: `conflicting claims: ${edgeName(first.edge)} in ${destinationsText(destinations)} is claimed for ${digests.length} different digests (${digests.join(", ")}); none would be promoted`,
      position: first.edge.position,
      hint: "A tag names one digest: keep one claim.",
    });
  }
  const unreadable = planned.filter((entry) => entry.decision.kind === "unreadable");
  for (const { first, destinations } of groupEdges(unreadable, ({ decision }) =>
    decision.kind === "unreadable" ? `${decision.side}\u0000${decision.message}` : "",
  )) {
    const detail =
      first.decision.kind === "unreadable" ? `${first.decision.side}: ${first.decision.message}` : "";
    items.push({
      severity: "error",
      message: `could not check ${edgeName(first.edge)} (${destinationsText(destinations)}): ${detail}`,
      position: first.edge.position,
    });
  }
  const counts = countDecisions(planned);
  const failed = items.length > 0;
  return {
    id: "tag-moves",
    title: CHECK_TITLES["tag-moves"],
    status: failed ? "fail" : "pass",
    summary:
      planned.length === 0
        ? "no new edges"
        : `${plural(planned.length, "new edge")}: ${totalsText(decisionTotals(counts))}`,
    items: capItems(items),
  };
}

/** One item per file the base revision had but that was not read: what it held is unknown. */
function unreadItems(unread: readonly Finding[], what: string): CheckItem[] {
  return unread.map((finding) => ({
    severity: "error",
    message: `not read at the base revision: ${finding.message}; ${what}`,
    position: finding.position,
    hint: "Links and submodules are never followed in git: make the file a regular file (a copy) in its own folder.",
  }));
}

async function removalCheck(
  removed: readonly PromotionEdge[],
  unread: readonly Finding[],
  options: CheckOptions,
): Promise<CheckResult> {
  const blind = unreadItems(unread, "lines removed from it cannot be seen");
  if (removed.length === 0 && blind.length > 0) {
    return {
      id: "removals",
      title: CHECK_TITLES.removals,
      status: "fail",
      summary: `${plural(blind.length, "file")} at the base revision not read; removals from ${blind.length === 1 ? "it" : "them"} cannot be judged`,
      items: capItems(blind),
    };
  }
  if (removed.length === 0) {
    return {
      id: "removals",
      title: CHECK_TITLES.removals,
      status: "pass",
      summary: "nothing removed",
      items: [],
    };
  }
  const keys = new RepositoryKeyCache();
  const { destinations } = destinationQuestions(removed, keys);
  const observed = await observeRepositories(destinations, options.provider, "destination", {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
  });
  const live: { edge: PromotionEdge }[] = [];
  const unreadable: { edge: PromotionEdge; message: string }[] = [];
  let notPromoted = 0;
  for (const edge of removed) {
    const state = observed.get(keys.of(edge.destination));
    if (!state || state.kind === "unreadable") {
      unreadable.push({ edge, message: state?.kind === "unreadable" ? state.message : "not read" });
      continue;
    }
    const present =
      edge.tag === undefined ? state.digests.has(edge.digest) : state.tags.get(edge.tag) === edge.digest;
    if (present) live.push({ edge });
    else notPromoted += 1;
  }
  const severity = options.allowRemovals ? "warning" : "error";
  const items: CheckItem[] = groupEdges(live, ({ edge }) =>
    [edge.project, edge.image, edge.digest, edge.tag ?? ""].join("\u0000"),
  ).map(({ first, destinations }) => ({
    severity,
    message: `removed from the manifest but live in production: ${edgeName(first.edge)}@${first.edge.digest} in ${destinationsText(destinations)} (the line was here at the base revision)`,
    position: first.edge.position,
    hint: "Removing lines deletes nothing: the image stays in production and is no longer reviewed or re-promoted. Restore the lines, or pass --allow-removals when that is the intent.",
  }));
  for (const { first, destinations } of groupEdges(unreadable, ({ message }) => message)) {
    items.push({
      severity: "error",
      message: `could not check whether ${edgeName(first.edge)} is in production (${destinationsText(destinations)}): ${first.message}`,
      position: first.edge.position,
    });
  }
  items.push(...blind);
  const failed = items.some((item) => item.severity === "error");
  return {
    id: "removals",
    title: CHECK_TITLES.removals,
    status: failed ? "fail" : items.length > 0 ? "warn" : "pass",
    summary: `${plural(removed.length, "removed edge")}: ${live.length} still live in production, ${notPromoted} never promoted${live.length > 0 ? "; removing lines deletes nothing from the registries" : ""}${blind.length > 0 ? `; ${plural(blind.length, "file")} at the base revision not read` : ""}`,
    items: capItems(items),
  };
}

interface NewImage {
  readonly edge: PromotionEdge;
  readonly facts: ImageFacts | undefined;
  readonly error?: string;
}

/** Facts of digests that the change brings to a repository for the first time, from staging. */
async function readNewImageFacts(
  planned: readonly PlannedEdge[],
  baseContent: PromotedContent,
  keys: RepositoryKeyCache,
  options: CheckOptions,
): Promise<Map<string, NewImage>> {
  const wanted = new Map<string, PromotionEdge>();
  for (const { edge, decision } of planned) {
    if (decision.kind === "missing-source" || decision.kind === "unreadable") continue;
    const key = `${keys.of(edge.source)}@${edge.digest}`;
    if (wanted.has(key)) continue;
    const isNew = !baseContent.hasDigest(keys.of(edge.destination), edge.digest);
    const tagged = edge.tag !== undefined;
    if (isNew || tagged) wanted.set(key, edge);
  }
  const facts = new Map<string, NewImage>();
  await runBounded(
    [...wanted],
    options.concurrency ?? 8,
    async ([key, edge]) => {
      const store = openOnSide(options.provider, edge.source, "source");
      try {
        facts.set(key, {
          edge,
          facts: await readImageFacts(store, edge.digest, options.signal ? { signal: options.signal } : {}),
        });
      } catch (error) {
        if (options.signal?.aborted) throw error;
        facts.set(key, { edge, facts: undefined, error: describeError(error) });
      }
    },
    options.signal,
  );
  return facts;
}

function sizeCheck(images: ReadonlyMap<string, NewImage>, maxImageSize: number | undefined): CheckResult {
  if (maxImageSize === undefined) {
    return {
      id: "image-size",
      title: CHECK_TITLES["image-size"],
      status: "skipped",
      summary: "no --max-image-size given",
      items: [],
    };
  }
  const items: CheckItem[] = [];
  let checked = 0;
  let attestations = 0;
  let largest = 0;
  for (const { edge, facts, error } of images.values()) {
    // What was not measured fails: a size check that cannot look must not pass.
    if (error !== undefined || !facts) {
      items.push({
        severity: "error",
        message: `could not read ${edge.image}@${edge.digest} from staging: ${error ?? "the registry does not have it"}; its size was not checked`,
        position: edge.position,
      });
      continue;
    }
    for (const platform of facts.platforms) {
      checked += 1;
      if (platform.attestation) attestations += 1;
      largest = Math.max(largest, platform.size);
      if (platform.size <= maxImageSize) continue;
      const what = platform.attestation ? "marked as an attestation" : platformText(platform.platform);
      items.push({
        severity: "error",
        message: `${edge.image}@${edge.digest} (${what}${facts.kind === "index" ? ` ${platform.digest}` : ""}) is ${formatBytes(platform.size)} compressed, over the limit of ${formatBytes(maxImageSize)}`,
        position: edge.position,
        hint: "Make the image smaller (multi-stage builds, a slimmer base), or raise --max-image-size in the workflow after review.",
      });
    }
  }
  const failed = items.some((item) => item.severity === "error");
  return {
    id: "image-size",
    title: CHECK_TITLES["image-size"],
    status: failed ? "fail" : items.length > 0 ? "warn" : "pass",
    summary: `${plural(checked, "platform image")} of new digests checked against ${formatBytes(maxImageSize)}${attestations > 0 ? ` (${attestations} marked as attestations)` : ""}${checked > 0 ? `; largest ${formatBytes(largest)}` : ""}`,
    items: capItems(items),
  };
}

/** Tag -> digest for each (project, image) of the base: the versions already reviewed. */
function baseTags(base: ManifestSet): Map<string, Map<Tag, Digest>> {
  const result = new Map<string, Map<Tag, Digest>>();
  for (const manifest of base.manifests) {
    for (const image of mergeImages(manifest)) {
      const tags = new Map<Tag, Digest>();
      for (const digest of image.digests) for (const tag of digest.tags) tags.set(tag.tag, digest.digest);
      result.set(`${manifest.project}\u0000${image.name}`, tags);
    }
  }
  return result;
}

/** What a kind lookup found: the kind, or why it is not known. */
type KindAnswer = { readonly kind: ImageKind } | { readonly unknown: string };

async function kindCheck(
  planned: readonly PlannedEdge[],
  base: RevisionManifests,
  images: ReadonlyMap<string, NewImage>,
  options: CheckOptions,
): Promise<CheckResult> {
  const keys = new RepositoryKeyCache();
  const previousVersions = baseTags(base.set);
  // One comparison per (project, image, tag): the first destination edge carries it.
  const comparisons = new Map<string, { edge: PromotionEdge; previousTag: Tag; previousDigest: Digest }>();
  for (const { edge, decision } of planned) {
    if (edge.tag === undefined || decision.kind === "missing-source" || decision.kind === "unreadable")
      continue;
    const key = `${edge.project}\u0000${edge.image}\u0000${edge.tag}`;
    if (comparisons.has(key)) continue;
    const known = previousVersions.get(`${edge.project}\u0000${edge.image}`);
    if (!known) continue;
    const previousTag = previousInSeries(edge.tag, known.keys()) as Tag | undefined;
    if (previousTag === undefined) continue;
    const previousDigest = known.get(previousTag);
    if (previousDigest === undefined || previousDigest === edge.digest) continue;
    comparisons.set(key, { edge, previousTag, previousDigest });
  }
  const kindCache = new Map<string, Promise<KindAnswer>>();
  const kindOf = (edge: PromotionEdge, digest: Digest): Promise<KindAnswer> => {
    const cacheKey = `${keys.of(edge.source)}@${digest}`;
    let pending = kindCache.get(cacheKey);
    if (!pending) {
      pending = (async (): Promise<KindAnswer> => {
        const known = images.get(cacheKey)?.facts;
        if (known) return { kind: known.kind };
        const call = options.signal ? { signal: options.signal } : {};
        const problems: string[] = [];
        // The previous version may be gone from staging: production still has it.
        for (const [location, side] of [
          [edge.source, "source"],
          [edge.destination, "destination"],
        ] as const) {
          const store = openOnSide(options.provider, location, side);
          try {
            const found = await readImageKind(store, digest, call);
            if (found) return { kind: found.kind };
            problems.push(`${store.name} does not have it`);
          } catch (error) {
            if (options.signal?.aborted) throw error;
            if (!isPromoterError(error)) throw error;
            problems.push(`${store.name}: ${describeError(error)}`);
          }
        }
        return { unknown: problems.join("; ") };
      })();
      kindCache.set(cacheKey, pending);
    }
    return pending;
  };

  const items: CheckItem[] = [];
  let compared = 0;
  let changed = 0;
  const entries = [...comparisons.values()];
  const results = new Array<{ now: KindAnswer; before: KindAnswer }>(entries.length);
  await runBounded(
    entries,
    options.concurrency ?? 8,
    async ({ edge, previousDigest }, index) => {
      results[index] = { now: await kindOf(edge, edge.digest), before: await kindOf(edge, previousDigest) };
    },
    options.signal,
  );
  for (const [index, { edge, previousTag, previousDigest }] of entries.entries()) {
    const result = results[index];
    if (!result) continue;
    const { now, before } = result;
    const kinds = "kind" in now && "kind" in before ? { now: now.kind, before: before.kind } : undefined;
    if (!kinds) {
      // Not knowing is not passing: a registry that will not answer must not hide a change.
      const digest = "unknown" in now ? edge.digest : previousDigest;
      const reason = "unknown" in now ? now.unknown : "unknown" in before ? before.unknown : "";
      items.push({
        severity: options.allowKindChanges ? "warning" : "error",
        message: `could not compare ${edgeName(edge)} with ${previousTag}, the previous version in its tag series: the kind of ${digest} is unknown (${reason})`,
        position: edge.position,
        hint: "Make the digest readable in staging or production, or pass --allow-kind-change when a change of kind is acceptable.",
      });
      continue;
    }
    compared += 1;
    if (kinds.now === kinds.before) continue;
    changed += 1;
    const series = tagSeries(edge.tag ?? "");
    if (kinds.before === "index") {
      items.push({
        severity: options.allowKindChanges ? "warning" : "error",
        message: `${edgeName(edge)} is a single-platform image, but the previous version in its tag series (${series}), ${previousTag} (${previousDigest}), is a multi-platform index`,
        position: edge.position,
        hint: "Promote the multi-arch index digest (docker buildx imagetools inspect shows it), not one platform's digest; pass --allow-kind-change if dropping platforms is intended.",
      });
    } else {
      items.push({
        severity: "notice",
        message: `${edgeName(edge)} is a multi-platform index; the previous version in its tag series (${series}), ${previousTag}, is a single-platform image`,
        position: edge.position,
      });
    }
  }
  // Previous versions in files the base revision did not read are unknown too.
  if (base.unread.length > 0) {
    items.push({
      severity: options.allowKindChanges ? "warning" : "error",
      message: `${plural(base.unread.length, "file")} at the base revision not read (see Removed edges): the previous versions they list were not compared`,
    });
  }
  const failed = items.some((item) => item.severity === "error");
  return {
    id: "kind-changes",
    title: CHECK_TITLES["kind-changes"],
    status: failed ? "fail" : items.some((item) => item.severity === "warning") ? "warn" : "pass",
    summary: `${plural(compared, "new tag")} compared with the previous version in its series; ${changed} changed kind${compared < entries.length ? `; ${entries.length - compared} could not be compared` : ""}`,
    items: capItems(items),
  };
}

function vulnerabilityCheck(options: CheckOptions, planned: readonly PlannedEdge[]): CheckResult {
  const reports = options.vulnerabilityReports ?? [];
  if (reports.length === 0) {
    return {
      id: "vulnerabilities",
      title: CHECK_TITLES.vulnerabilities,
      status: "skipped",
      summary: "no --vuln-report given",
      items: [],
    };
  }
  const threshold = options.vulnerabilityThreshold ?? DEFAULT_VULNERABILITY_THRESHOLD;
  const items: CheckItem[] = [];
  let failing = 0;
  let unfixable = 0;
  let below = 0;
  const scanned = new Set<string>();
  for (const { file, report } of reports) {
    for (const digest of reportedDigests(report)) scanned.add(digest);
    const gate = applyVulnerabilityGate(report.findings, threshold);
    failing += gate.failing.length;
    unfixable += gate.unfixable.length;
    below += gate.below;
    for (const finding of gate.failing) {
      items.push({ severity: "error", message: `${vulnerabilityText(finding)} (${file})` });
    }
  }
  // A report of some other image judges nothing: every image the change adds must be named by
  // digest in a report (a tag names whatever staging holds at scan time).
  const unscanned = new Map<string, PromotionEdge>();
  for (const { edge, decision } of planned) {
    if (decision.kind === "missing-source" || decision.kind === "unreadable") continue;
    if (!scanned.has(edge.digest) && !unscanned.has(edge.digest)) unscanned.set(edge.digest, edge);
  }
  for (const edge of unscanned.values()) {
    items.push({
      severity: "error",
      message: `${edge.sourceRegistry.name}/${edge.image}@${edge.digest} is not named by any --vuln-report: it was not judged`,
      position: edge.position,
      hint: "Scan every image the change adds by digest (trivy image --format json REPO@DIGEST, or grype -o json REPO@DIGEST); the report names it in ArtifactName or Metadata.RepoDigests (Grype: source.target; SARIF: Trivy's run properties).",
    });
  }
  return {
    id: "vulnerabilities",
    title: CHECK_TITLES.vulnerabilities,
    status: failing > 0 || unscanned.size > 0 ? "fail" : "pass",
    summary: `${plural(failing, "fixable finding")} at or above ${threshold}; ${unfixable} at or above ${threshold} without a fix yet (not failing); ${below} below ${threshold}${unscanned.size > 0 ? `; ${plural(unscanned.size, "new image")} not in any report` : ""}`,
    items: capItems(items),
  };
}

function vulnerabilityText(finding: VulnerabilityFinding): string {
  const where = finding.package
    ? ` in ${finding.package}${finding.installedVersion ? ` ${finding.installedVersion}` : ""}`
    : finding.target
      ? ` in ${finding.target}`
      : "";
  const fix =
    finding.fixable === "unknown"
      ? "; the report does not say whether a fix exists (counted as fixable)"
      : finding.fixedVersion
        ? `; fixed in ${finding.fixedVersion}`
        : "";
  return `${finding.severity} ${finding.id}${where}${fix}`;
}
