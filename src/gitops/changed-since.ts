import type { Finding, ManifestSet } from "../manifest/index.js";
import type { ManifestInput } from "../manifest-files/index.js";
import type { PromotionEdge } from "../plan/index.js";
import { changedEdgeFilter } from "./edge-diff.js";
import { loadManifestsAtRevision, type RevisionOptions } from "./revision-manifests.js";

/**
 * `promote --changed-since REV`: the edges a merged change added, so the post-merge job promotes
 * what was reviewed in that change and nothing else (a scheduled full run reconciles the rest).
 * The same git reading and edge comparison as `promoter check`.
 */
export async function edgesChangedSince(
  input: ManifestInput,
  revision: string,
  options: RevisionOptions,
): Promise<{
  readonly commit: string;
  readonly filter: (edge: PromotionEdge) => boolean;
  /**
   * Files at REV that were not read (symbolic links, submodules, files over the size limit): the
   * edges they held count as added, so at worst more of the reviewed manifests is promoted.
   */
  readonly unread: readonly Finding[];
  /** The findings the manifests had at REV: those a run does not blame on the change. */
  readonly baseFindings: readonly Finding[];
  /** Every digest the manifests asked for at REV: a missing one is not the change's doing. */
  readonly baseDigests: ReadonlySet<string>;
}> {
  const base = await loadManifestsAtRevision(input, revision, options);
  return {
    commit: base.commit,
    filter: changedEdgeFilter(base.set),
    unread: base.unread,
    baseFindings: base.set.findings,
    baseDigests: requestedDigests(base.set),
  };
}

function requestedDigests(set: ManifestSet): Set<string> {
  const digests = new Set<string>();
  for (const manifest of set.manifests) {
    for (const image of manifest.images) for (const entry of image.digests) digests.add(entry.digest);
  }
  return digests;
}
