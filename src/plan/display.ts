import { RepositoryKeyCache } from "../reference/index.js";
import { conflictDigests, type SourcePosition } from "../manifest/index.js";
import type { Digest, Tag } from "../reference/index.js";
import type { EdgeDecisionKind, PlannedEdge } from "./decide.js";

import type { PromotionEdge } from "./edge.js";
import type { EdgeOutcome, EdgeOutcomeKind } from "./outcome.js";

/**
 * Grouping edges for people: by image, then digest, then one line per distinct action with the
 * destinations that share it. A project that promotes to 22 mirrors reads as one line per action,
 * not 22 identical ones. Pure; the CLI renders the groups as text or markdown.
 */

/** A planned decision (dry run) or what happened (after --confirm). */
export type RowStatus = EdgeDecisionKind | EdgeOutcomeKind;

export interface DisplayRow {
  readonly edge: PromotionEdge;
  readonly status: RowStatus;
  /** For problems: the reason (current digest of a moved tag, an error message). */
  readonly detail?: string;
}

export type LineKind = "copy" | "tag" | "problem";

export interface DestinationLine {
  readonly kind: LineKind;
  readonly status: RowStatus;
  /** Tags this line applies (copy, tag) or concerns (problem); empty for a tagless digest. */
  readonly tags: readonly Tag[];
  readonly detail?: string;
  /** Where the manifest asks for it (problems point people at the line to fix). */
  readonly position?: SourcePosition;
  /** Destination registry names as written in the manifest, sorted. */
  readonly destinations: readonly string[];
}

export interface DigestGroup {
  readonly digest: Digest;
  /** Every tag the manifests want for this digest, sorted. */
  readonly tags: readonly Tag[];
  readonly lines: readonly DestinationLine[];
  /** Edges with nothing to do (already promoted). */
  readonly unchanged: number;
}

export interface ImageGroup {
  readonly project: string;
  readonly image: string;
  /** The source repository as the manifest names it: `host/path/image` or `oci:DIR/image`. */
  readonly source: string;
  readonly digests: readonly DigestGroup[];
  readonly edges: number;
  readonly unchanged: number;
}

const PROBLEM_STATUSES: ReadonlySet<RowStatus> = new Set([
  "refused-tag-move",
  "missing-source",
  "refused-conflict",
  "refused-source-signature",
  "unreadable",
  "failed",
]);

function lineKindOf(status: RowStatus): LineKind | undefined {
  if (status === "copy" || status === "copied") return "copy";
  if (status === "add-tag" || status === "tagged") return "tag";
  if (PROBLEM_STATUSES.has(status)) return "problem";
  return undefined;
}

/**
 * Rows for a dry run: the decisions, one at a time (a generator: the real registry.k8s.io tree
 * has ~720,000 edges, and the grouping keeps only the rows that make a line).
 */
export function* rowsFromPlan(edges: readonly PlannedEdge[]): Generator<DisplayRow> {
  for (const { edge, decision } of edges) {
    switch (decision.kind) {
      case "refused-tag-move":
        yield { edge, status: decision.kind, detail: `points at ${decision.current}` };
        break;
      case "refused-conflict":
        yield {
          edge,
          status: decision.kind,
          detail: `claimed for ${conflictDigests(decision.conflict).length} different digests`,
        };
        break;
      case "unreadable":
        yield { edge, status: decision.kind, detail: `${decision.side}: ${decision.message}` };
        break;
      case "refused-source-signature":
        yield { edge, status: decision.kind, detail: decision.reason };
        break;
      default:
        yield { edge, status: decision.kind };
    }
  }
}

/** Rows for a run that wrote: the outcomes, one at a time (see `rowsFromPlan`). */
export function* rowsFromOutcomes(outcomes: readonly EdgeOutcome[]): Generator<DisplayRow> {
  for (const { edge, decision, outcome, error } of outcomes) {
    if (outcome === "refused-tag-move" && decision.kind === "refused-tag-move") {
      yield { edge, status: outcome, detail: `points at ${decision.current}` };
    } else if (error) {
      yield { edge, status: outcome, detail: error.message };
    } else {
      yield { edge, status: outcome };
    }
  }
}

/** The rows of one destination of one digest that make a line (copies, tags, problems). */
interface DestinationRows {
  readonly name: string;
  readonly rows: DisplayRow[];
}

/**
 * A destination whose rows so far make no line (unchanged): it keeps its place in the order of
 * destinations without holding its rows.
 */
const NO_LINES: DestinationRows = Object.freeze({ name: "", rows: [] as DisplayRow[] });

interface DigestRows {
  readonly tags: Set<Tag>;
  edges: number;
  unchanged: number;
  /** By destination key, in the order the destinations first appear. */
  readonly destinations: Map<string, DestinationRows>;
}

interface ImageRows {
  readonly project: string;
  readonly image: string;
  readonly source: string;
  readonly digests: Map<Digest, DigestRows>;
}

export function groupForDisplay(rows: Iterable<DisplayRow>, keys = new RepositoryKeyCache()): ImageGroup[] {
  // Rows are counted as they come, and only those that make a line are kept: a no-op run of the
  // whole registry.k8s.io tree keeps none of its ~720,000.
  const byProject = new Map<string, Map<string, ImageRows>>();
  const images: ImageRows[] = [];
  for (const row of rows) {
    const { edge } = row;
    let projectImages = byProject.get(edge.project);
    if (!projectImages) byProject.set(edge.project, (projectImages = new Map<string, ImageRows>()));
    let image = projectImages.get(edge.image);
    if (!image) {
      // The source as the manifest names it (`oci:staging/web`, not the resolved absolute path).
      image = {
        project: edge.project,
        image: edge.image,
        source: `${edge.sourceRegistry.name}/${edge.image}`,
        digests: new Map(),
      };
      projectImages.set(edge.image, image);
      images.push(image);
    }
    let digest = image.digests.get(edge.digest);
    if (!digest) {
      digest = { tags: new Set(), edges: 0, unchanged: 0, destinations: new Map() };
      image.digests.set(edge.digest, digest);
    }
    digest.edges += 1;
    if (edge.tag !== undefined) digest.tags.add(edge.tag);
    if (row.status === "unchanged") digest.unchanged += 1;
    const destinationKey = keys.of(edge.destination);
    const destination = digest.destinations.get(destinationKey);
    if (lineKindOf(row.status) === undefined) {
      if (destination === undefined) digest.destinations.set(destinationKey, NO_LINES);
    } else if (destination === undefined || destination === NO_LINES) {
      // Setting an existing key keeps its place in the Map's order.
      digest.destinations.set(destinationKey, { name: edge.destinationRegistry.name, rows: [row] });
    } else {
      destination.rows.push(row);
    }
  }

  const groups: ImageGroup[] = [];
  for (const image of images) {
    const digests: DigestGroup[] = [];
    let edges = 0;
    let unchanged = 0;
    for (const [digest, byDigest] of image.digests) {
      const lines = new Map<
        string,
        { line: Omit<DestinationLine, "destinations">; destinations: string[] }
      >();
      for (const destination of byDigest.destinations.values()) {
        if (destination === NO_LINES) continue;
        for (const line of linesOfDestination(destination.rows)) {
          const key = `${line.kind}|${line.status}|${line.tags.join(",")}|${line.detail ?? ""}`;
          const existing = lines.get(key);
          if (existing) existing.destinations.push(destination.name);
          else lines.set(key, { line, destinations: [destination.name] });
        }
      }
      edges += byDigest.edges;
      unchanged += byDigest.unchanged;
      digests.push({
        digest,
        tags: [...byDigest.tags].sort(),
        lines: [...lines.values()]
          .map(({ line, destinations }) => ({ ...line, destinations: destinations.sort() }))
          .sort(compareLines),
        unchanged: byDigest.unchanged,
      });
    }
    groups.push({
      project: image.project,
      image: image.image,
      source: image.source,
      digests: digests.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0)),
      edges,
      unchanged,
    });
  }
  return groups.sort((a, b) => a.image.localeCompare(b.image) || a.project.localeCompare(b.project));
}

const KIND_ORDER: Record<LineKind, number> = { problem: 0, copy: 1, tag: 2 };

function compareLines(a: DestinationLine, b: DestinationLine): number {
  return (
    KIND_ORDER[a.kind] - KIND_ORDER[b.kind] ||
    a.status.localeCompare(b.status) ||
    a.tags.join().localeCompare(b.tags.join())
  );
}

/** The lines one destination contributes for one digest: its copy, its added tags, its problems. */
function linesOfDestination(rows: readonly DisplayRow[]): Omit<DestinationLine, "destinations">[] {
  const byKey = new Map<
    string,
    { kind: LineKind; status: RowStatus; tags: Tag[]; detail?: string; position?: SourcePosition }
  >();
  for (const row of rows) {
    const kind = lineKindOf(row.status);
    if (!kind) continue;
    const key = `${kind}|${row.status}|${row.detail ?? ""}`;
    let line = byKey.get(key);
    if (!line) {
      line = {
        kind,
        status: row.status,
        tags: [],
        ...(row.detail === undefined ? {} : { detail: row.detail }),
        ...(kind === "problem" ? { position: row.edge.position } : {}),
      };
      byKey.set(key, line);
    }
    if (row.edge.tag !== undefined) line.tags.push(row.edge.tag);
  }
  return [...byKey.values()].map((line) => ({ ...line, tags: [...new Set(line.tags)].sort() }));
}
