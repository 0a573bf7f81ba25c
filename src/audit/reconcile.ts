import { runBounded } from "../concurrency/index.js";
import { describeError } from "../errors.js";
import type { Logger } from "../log.js";
import {
  formatDigestInTag,
  formatRepositoryLocation,
  isDigestInTag,
  remoteRepositoryKey,
  repositoryIn,
  type Digest,
  type DigestInTag,
  type RepositoryPath,
  type Tag,
} from "../reference/index.js";
import { openOnSide, type RepositoryCatalog, type RepositoryOpener } from "../registry/index.js";
import { ATTACHMENT_TAG_NAMES, parseAttachmentTag } from "../sign/index.js";
import { checkAttachment, promotedRelation, promotedTagSubject, type ManifestLookup } from "./observe.js";
import {
  productionRepositories,
  repositoryStanding,
  type DesiredRepository,
  type DesiredState,
} from "./desired-state.js";
import { RegistryManifestLookup } from "./lookup.js";

/**
 * `promoter audit reconcile`: one comparison of what the manifests want with what production
 * registries hold, through the store interface (any registry, or OCI layout directories).
 *
 * What can be seen is limited by the distribution spec: a registry lists tags (`tags/list`) and
 * repositories (`_catalog`, where offered) but not the manifests of a repository. So unexpected
 * digests are found when a tag points at them, as children of an unexpected tagged index, or
 * as the content of a repository the manifests do not name (through its tags); a manifest
 * pushed by digest only, without a tag, into a managed repository is invisible here — the
 * event auditor (`audit serve`) is what catches those.
 */

export type ReconcileIssueKind =
  /** A tag no manifest asks for (signature, attestation and SBOM tags of promoted digests are expected). */
  | "unexpected-tag"
  /** A tag the manifests ask for points at another digest. */
  | "wrong-digest"
  /** A tag the manifests ask for is absent (the digest may be there). */
  | "missing-tag"
  /** A digest the manifests promote is absent from this mirror. */
  | "missing-digest"
  /** A digest no manifest promotes (found through a tag or as a child of an unexpected index). */
  | "unexpected-digest"
  /** A repository under a production registry that no manifest promotes into. */
  | "unexpected-repository"
  /** The repository could not be read. */
  | "unreadable";

export interface ReconcileIssue {
  readonly kind: ReconcileIssueKind;
  /** `host/path` or `oci:DIR/path`. */
  readonly repository: string;
  readonly tag?: Tag;
  readonly digest?: Digest;
  /** What the manifests want (wrong-digest). */
  readonly expected?: readonly Digest[];
  readonly detail: string;
}

export interface ReconcileReport {
  readonly repositories: number;
  readonly issues: readonly ReconcileIssue[];
  /** What could not be checked and why (catalog not offered, ...): not failures. */
  readonly notes: readonly string[];
}

/** What was read from one production repository. */
export interface ReconcileObservation {
  /** Every tag listed, with the digest it resolved to (undefined: gone between list and resolve). */
  readonly tags: ReadonlyMap<Tag, Digest | undefined>;
  /** Promoted digests found absent. */
  readonly missingDigests: ReadonlySet<Digest>;
  /** Non-promoted digests that are explained: child of a promoted index, referrer, attached artifact. */
  readonly explained: ReadonlySet<Digest>;
  /** Children of unexpected tagged indexes: child -> index. */
  readonly childrenOfUnexpected: ReadonlyMap<Digest, Digest>;
  /**
   * Attached-artifact tags of promoted (or explained) digests whose content is no attachment:
   * tag -> what it holds instead ("a runnable image (...)"), or why that could not be told.
   */
  readonly notAttachments?: ReadonlyMap<Tag, string>;
}

/** Issue order in reports: repository, kind, tag, digest. */
export function compareIssues(a: ReconcileIssue, b: ReconcileIssue): number {
  return (
    a.repository.localeCompare(b.repository) ||
    a.kind.localeCompare(b.kind) ||
    (a.tag ?? "").localeCompare(b.tag ?? "") ||
    (a.digest ?? "").localeCompare(b.digest ?? "")
  );
}

/** Whether an attachment tag's subject is promoted here, or explained (a child of what is). */
function isExpectedSubject(
  subject: DigestInTag,
  desired: DesiredRepository,
  explained: ReadonlySet<Digest>,
): boolean {
  if (subject.digest !== undefined)
    return desired.digests.has(subject.digest) || explained.has(subject.digest);
  return [...desired.digests.keys(), ...explained].some((digest) => isDigestInTag(subject, digest));
}

/** `signature tag of sha256:...`, for details. */
function attachmentTagText(attached: NonNullable<ReturnType<typeof parseAttachmentTag>>): string {
  return `${ATTACHMENT_TAG_NAMES[attached.kind]} tag of ${formatDigestInTag(attached.subject)}`;
}

/** Pure: the issues of one repository from its desired and observed state, in report order. */
export function compareRepository(
  desired: DesiredRepository,
  observed: ReconcileObservation,
): ReconcileIssue[] {
  const issues: ReconcileIssue[] = [];
  const repository = desired.key;
  const reportedDigests = new Set<Digest>();
  const unexpectedDigest = (digest: Digest, detail: string): void => {
    if (desired.digests.has(digest) || observed.explained.has(digest) || reportedDigests.has(digest)) return;
    reportedDigests.add(digest);
    issues.push({ kind: "unexpected-digest", repository, digest, detail });
  };
  for (const [tag, digest] of [...observed.tags].sort(([a], [b]) => a.localeCompare(b))) {
    if (digest === undefined) continue;
    const claims = desired.tags.get(tag);
    if (claims) {
      if (!claims.includes(digest)) {
        issues.push({
          kind: "wrong-digest",
          repository,
          tag,
          digest,
          expected: claims,
          detail: `tag ${tag} points at ${digest}; the manifests want ${claims.join(" or ")}`,
        });
        unexpectedDigest(digest, `tag ${tag} points at it`);
      }
      continue;
    }
    const attached = parseAttachmentTag(tag);
    const expectedAttachment =
      attached !== undefined && isExpectedSubject(attached.subject, desired, observed.explained);
    const notAttachment = observed.notAttachments?.get(tag);
    if (expectedAttachment && notAttachment === undefined) continue;
    if (attached && notAttachment !== undefined) {
      issues.push({
        kind: "unexpected-tag",
        repository,
        tag,
        digest,
        detail: `${attachmentTagText(attached)}, but it holds ${notAttachment}`,
      });
      unexpectedDigest(digest, `tag ${tag} points at it`);
      continue;
    }
    issues.push({
      kind: "unexpected-tag",
      repository,
      tag,
      digest,
      detail: attached
        ? `${attachmentTagText(attached)}, which is not promoted here`
        : `no manifest asks for tag ${tag}${desired.digests.has(digest) ? " (its digest is promoted)" : ""}`,
    });
    unexpectedDigest(digest, `tag ${tag} points at it`);
  }
  for (const [child, index] of observed.childrenOfUnexpected) {
    unexpectedDigest(child, `child manifest of unexpected index ${index}`);
  }
  for (const [digest, wanted] of desired.digests) {
    if (observed.missingDigests.has(digest)) {
      issues.push({
        kind: "missing-digest",
        repository,
        digest,
        detail:
          wanted.tags.length > 0
            ? `promoted with tags ${wanted.tags.join(", ")}, absent here`
            : "promoted, absent here",
      });
      continue;
    }
    for (const tag of wanted.tags) {
      // A conflicting claim cannot be met for every digest; wrong-digest covers it when listed.
      if (!observed.tags.has(tag)) {
        issues.push({
          kind: "missing-tag",
          repository,
          tag,
          digest,
          detail: `tag ${tag} -> ${digest} is absent`,
        });
      }
    }
  }
  return issues.sort(compareIssues);
}

export const DEFAULT_RECONCILE_CONCURRENCY = 8;

export interface ReconcileOptions {
  readonly provider: RepositoryOpener & RepositoryCatalog;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
  readonly concurrency?: number;
  /** List production registries (`_catalog`) for repositories no manifest names. Default true. */
  readonly catalog?: boolean;
}

/** Reads one production repository: tags and where they point, absent promoted digests, explanations. */
async function observeRepository(
  desired: DesiredRepository,
  provider: RepositoryOpener,
  lookup: ManifestLookup,
  signal: AbortSignal | undefined,
): Promise<ReconcileObservation> {
  const call = signal ? { signal } : {};
  const store = openOnSide(provider, desired.location, "destination");
  const tags = new Map<Tag, Digest | undefined>();
  for (const tag of await store.listTags(call)) {
    tags.set(tag, (await store.resolve(tag, call))?.digest);
  }
  const present = new Set<Digest>();
  for (const [tag, digest] of tags) {
    if (digest !== undefined && desired.tags.get(tag)?.includes(digest)) present.add(digest);
  }
  const missingDigests = new Set<Digest>();
  for (const digest of desired.digests.keys()) {
    if (present.has(digest)) continue;
    if (!(await store.resolve(digest, call))) missingDigests.add(digest);
  }
  // Non-promoted digests seen through tags, and attached-artifact subjects: explained or not.
  const candidates = new Set<Digest>();
  // Subjects a tag names by their first 64 hex digits only (sha512): found among what is promoted.
  const partialSubjects: DigestInTag[] = [];
  for (const [tag, digest] of tags) {
    if (digest !== undefined && !desired.digests.has(digest)) candidates.add(digest);
    const subject = parseAttachmentTag(tag)?.subject;
    if (subject?.digest === undefined) {
      if (subject) partialSubjects.push(subject);
    } else if (!desired.digests.has(subject.digest)) candidates.add(subject.digest);
  }
  const explained = new Set<Digest>();
  for (const subject of partialSubjects) {
    const found = await promotedTagSubject(desired, subject, lookup);
    if (found) explained.add(found.digest);
  }
  const childrenOfUnexpected = new Map<Digest, Digest>();
  for (const digest of candidates) {
    if (await promotedRelation(desired, digest, lookup)) {
      explained.add(digest);
      continue;
    }
    const facts = await lookup.manifest(desired, digest);
    if (facts?.subject !== undefined && (await promotedRelation(desired, facts.subject, lookup))) {
      explained.add(digest);
      continue;
    }
    for (const child of facts?.children ?? []) {
      // A referrers fallback index (`sha256-<hex>`, on registries without the referrers API)
      // lists referrers: one whose subject is promoted here is explained, as it is when listed
      // by the API (signature bundles, the promoter's own attestations, carried referrers).
      const entry = await lookup.manifest(desired, child);
      if (entry?.subject !== undefined && (await promotedRelation(desired, entry.subject, lookup))) {
        explained.add(child);
        continue;
      }
      childrenOfUnexpected.set(child, digest);
    }
  }
  // An attached-artifact tag is expected only when it holds an attachment, not an image.
  const notAttachments = new Map<Tag, string>();
  for (const [tag, digest] of tags) {
    const attached = parseAttachmentTag(tag);
    if (digest === undefined || !attached) continue;
    if (!isExpectedSubject(attached.subject, desired, explained)) continue;
    const check = await checkAttachment(desired, digest, lookup);
    if (check.kind === "disguise") notAttachments.set(tag, check.looksLike);
    if (check.kind === "unknown") notAttachments.set(tag, `content that could not be checked (${check.why})`);
  }
  return { tags, missingDigests, explained, childrenOfUnexpected, notAttachments };
}

export async function reconcile(state: DesiredState, options: ReconcileOptions): Promise<ReconcileReport> {
  const { provider, logger, signal } = options;
  const lookup = new RegistryManifestLookup({
    provider,
    logger,
    verifiedTagFor: () => undefined,
    ...(signal ? { signal } : {}),
  });
  const repositories = productionRepositories(state);
  const issues: ReconcileIssue[] = [];
  const notes: string[] = [];
  await runBounded(
    repositories,
    options.concurrency ?? DEFAULT_RECONCILE_CONCURRENCY,
    async (desired) => {
      try {
        const observed = await observeRepository(desired, provider, lookup, signal);
        issues.push(...compareRepository(desired, observed));
      } catch (error) {
        signal?.throwIfAborted();
        logger.log("warn", "cannot read production repository", {
          repository: desired.key,
          error: describeError(error),
        });
        issues.push({ kind: "unreadable", repository: desired.key, detail: describeError(error) });
      }
    },
    signal,
  );
  if (options.catalog ?? true) {
    issues.push(...(await unexpectedRepositories(state, options, notes)));
  }
  issues.sort(compareIssues);
  return { repositories: repositories.length, issues, notes };
}

/** Repositories under production registry locations that no manifest promotes into. */
async function unexpectedRepositories(
  state: DesiredState,
  options: ReconcileOptions,
  notes: string[],
): Promise<ReconcileIssue[]> {
  const { provider, signal } = options;
  const call = signal ? { signal } : {};
  const issues: ReconcileIssue[] = [];
  const seen = new Set<string>();
  for (const scope of state.registries) {
    if (!scope.production) continue;
    let paths: RepositoryPath[];
    try {
      paths = await provider.catalog(
        scope.location.kind === "remote"
          ? { kind: "remote", host: scope.location.host }
          : { kind: "oci-layout", directory: scope.location.directory },
        scope.location.kind === "remote" ? scope.location.prefix : "",
        call,
      );
    } catch (error) {
      signal?.throwIfAborted();
      notes.push(`cannot list repositories of ${scope.key} (catalog): ${describeError(error)}`);
      continue;
    }
    for (const repositoryPath of paths) {
      if (scope.location.kind === "oci-layout") {
        const key = formatRepositoryLocation(repositoryIn(scope.location, repositoryPath));
        if (seen.has(key) || state.repositories.has(key)) continue;
        seen.add(key);
        issues.push({
          kind: "unexpected-repository",
          repository: key,
          detail: "no manifest promotes into it",
        });
        continue;
      }
      const key = remoteRepositoryKey(scope.location.host, repositoryPath);
      if (seen.has(key)) continue;
      seen.add(key);
      if (repositoryStanding(state, scope.location.host, repositoryPath).kind !== "unmanaged") continue;
      let tags: Tag[] = [];
      try {
        tags = await openOnSide(
          provider,
          { kind: "remote", host: scope.location.host, repository: repositoryPath },
          "destination",
        ).listTags(call);
      } catch (error) {
        signal?.throwIfAborted();
        notes.push(`cannot list tags of ${key}: ${describeError(error)}`);
      }
      // A repository whose every manifest was deleted stays in the catalog with no tags.
      if (tags.length === 0) continue;
      issues.push({
        kind: "unexpected-repository",
        repository: key,
        detail: `no manifest promotes into it; tags: ${tags.slice(0, 10).join(", ")}${tags.length > 10 ? `, … (${tags.length})` : ""}`,
      });
    }
  }
  return issues;
}
