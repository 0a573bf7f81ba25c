import { isJsonObject } from "../json-shape.js";
import { PromoterError } from "../errors.js";
import { conflictDigests, type RegistryEntry, type SourcePosition } from "../manifest/index.js";
import {
  formatRepositoryLocation,
  isDigest,
  isRepositoryPath,
  isTag,
  canonicalRegistryHostProblem,
  type RegistryHost,
  type RepositoryLocation,
  RepositoryKeyCache,
} from "../reference/index.js";
import { countDecisions, type EdgeDecision, type EdgeDecisionKind, type PlannedEdge } from "./decide.js";
import type { PromotionEdge } from "./edge.js";
import type { EdgeError, EdgeOutcome, EdgeOutcomeKind } from "./outcome.js";

/**
 * The JSON form of a plan and of a run's report (`promote --output json`, `--plan-file`,
 * `--report`), documented in docs/promotion.md. One document shape for both: a report is a plan
 * whose edges also carry their `outcome`. Stable: fields are only added; an incompatible change
 * bumps `version`.
 */
export const PLAN_DOCUMENT_SCHEMA = "image-promoter/promotion";
export const PLAN_DOCUMENT_VERSION = 1;

export type JsonRepositoryLocation =
  | { readonly kind: "remote"; readonly host: string; readonly repository: string }
  | { readonly kind: "oci-layout"; readonly directory: string; readonly repository: string };

export interface JsonEdge {
  readonly project: string;
  readonly image: string;
  readonly digest: string;
  /** null for a tagless digest. */
  readonly tag: string | null;
  /** `host/path` or `oci:DIR/path`. */
  readonly source: string;
  readonly destination: string;
  readonly sourceLocation: JsonRepositoryLocation;
  readonly destinationLocation: JsonRepositoryLocation;
  /** Registry names as written in the manifest. */
  readonly sourceRegistry: string;
  readonly destinationRegistry: string;
  /** Where the manifest asks for this edge (file relative to the working directory). */
  readonly position: SourcePosition;
  readonly decision: EdgeDecisionKind;
  /** For refused-tag-move: where the destination tag points now. */
  readonly currentDigest?: string;
  /** For problems: why, in one sentence. */
  readonly reason?: string;
  /** Reports only: what happened. */
  readonly outcome?: EdgeOutcomeKind;
  readonly error?: EdgeError;
}

export interface PlanDocument {
  readonly schema: typeof PLAN_DOCUMENT_SCHEMA;
  readonly version: number;
  /** "plan" for a dry run or a saved plan; "report" once the plan was carried out. */
  readonly kind: "plan" | "report";
  readonly createdAt: string;
  readonly summary: {
    readonly edges: number;
    readonly decisions: Readonly<Record<EdgeDecisionKind, number>>;
    readonly outcomes?: Readonly<Record<EdgeOutcomeKind, number>>;
  };
  readonly edges: readonly JsonEdge[];
  /** Extra sections (validation findings, statistics) added by the caller. */
  readonly [section: string]: unknown;
}

function jsonLocation(location: RepositoryLocation): JsonRepositoryLocation {
  return location.kind === "remote"
    ? { kind: "remote", host: location.host, repository: location.repository }
    : { kind: "oci-layout", directory: location.directory, repository: location.repository };
}

function reasonOf(decision: EdgeDecision): string | undefined {
  switch (decision.kind) {
    case "refused-tag-move":
      return `the destination tag points at ${decision.current}; tags are never moved`;
    case "missing-source":
      return "the digest is not in the source repository";
    case "refused-conflict":
      return `tag ${decision.conflict.tag} is claimed for different digests: ${conflictDigests(decision.conflict).join(", ")}`;
    case "unreadable":
      return `${decision.side} could not be read: ${decision.message}`;
    case "refused-source-signature":
      return `the source digest has no valid signature: ${decision.reason}`;
    default:
      return undefined;
  }
}

export function jsonEdge(
  planned: PlannedEdge | EdgeOutcome,
  keys: RepositoryKeyCache,
  relativePosition: (position: SourcePosition) => SourcePosition,
): JsonEdge {
  const { edge, decision } = planned;
  const reason = reasonOf(decision);
  return {
    project: edge.project,
    image: edge.image,
    digest: edge.digest,
    tag: edge.tag ?? null,
    source: keys.of(edge.source),
    destination: keys.of(edge.destination),
    sourceLocation: jsonLocation(edge.source),
    destinationLocation: jsonLocation(edge.destination),
    sourceRegistry: edge.sourceRegistry.name,
    destinationRegistry: edge.destinationRegistry.name,
    position: relativePosition(edge.position),
    decision: decision.kind,
    ...(decision.kind === "refused-tag-move" ? { currentDigest: decision.current } : {}),
    ...(reason === undefined ? {} : { reason }),
    ...("outcome" in planned ? { outcome: planned.outcome } : {}),
    ...("outcome" in planned && planned.error ? { error: planned.error } : {}),
  };
}

/** A plan document could not be read back (`--from-plan`). */
export class PlanDocumentError extends PromoterError {
  constructor(message: string) {
    super("invalid-plan-file", message);
  }
}

// Control characters in a saved path would let a plan rewrite the lines that name it.
// eslint-disable-next-line no-control-regex -- control characters are what we look for
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

function parseLocation(value: unknown, where: string): RepositoryLocation {
  const fail = (): never => {
    throw new PlanDocumentError(`${where}: not a repository location`);
  };
  if (!isJsonObject(value)) return fail();
  const record = value;
  const repository = record.repository;
  if (typeof repository !== "string" || !isRepositoryPath(repository)) return fail();
  // The promoter writes hosts in their canonical spelling (a RegistryHost is lower case).
  if (
    record.kind === "remote" &&
    typeof record.host === "string" &&
    !canonicalRegistryHostProblem(record.host)
  ) {
    return { kind: "remote", host: record.host as RegistryHost, repository: repository };
  }
  if (
    record.kind === "oci-layout" &&
    typeof record.directory === "string" &&
    record.directory.length > 0 &&
    !CONTROL_CHARACTERS.test(record.directory)
  ) {
    return { kind: "oci-layout", directory: record.directory, repository: repository };
  }
  return fail();
}

/**
 * One edge of a saved plan, as the plan states it. Nothing here is trusted on execution: a run
 * from a plan executes the edges the manifests produce that match these (see `PlanBinding`).
 */
export interface SavedPlanEdge {
  /** `edges[i]`: where the edge is in the document, for messages. */
  readonly where: string;
  readonly edge: PromotionEdge;
  /** The display names the plan shows (`source`, `destination`). */
  readonly source: string;
  readonly destination: string;
  /** The planned decision, and for a refused tag move where the tag pointed. */
  readonly decision: unknown;
  readonly currentDigest: unknown;
}

/**
 * The edges of a saved plan (`--from-plan`), checked for shape only. Registry entries carry only
 * the name the plan gives.
 */
export function edgesFromDocument(document: unknown): SavedPlanEdge[] {
  if (!isJsonObject(document)) throw new PlanDocumentError("not a JSON object");
  const record = document;
  if (record.schema !== PLAN_DOCUMENT_SCHEMA) {
    throw new PlanDocumentError(`not a promotion plan (schema ${JSON.stringify(record.schema)})`);
  }
  if (record.version !== PLAN_DOCUMENT_VERSION) {
    throw new PlanDocumentError(
      `plan version ${JSON.stringify(record.version)} is not supported (expected ${PLAN_DOCUMENT_VERSION})`,
    );
  }
  if (!Array.isArray(record.edges)) throw new PlanDocumentError("the plan has no edges list");
  return record.edges.map((value: unknown, index): SavedPlanEdge => {
    const where = `edges[${index}]`;
    if (!isJsonObject(value)) throw new PlanDocumentError(`${where}: not an object`);
    const item = value;
    const { digest, tag, image, project, source, destination, sourceRegistry, destinationRegistry } = item;
    if (typeof digest !== "string" || !isDigest(digest))
      throw new PlanDocumentError(`${where}: invalid digest`);
    if (tag !== null && (typeof tag !== "string" || !isTag(tag)))
      throw new PlanDocumentError(`${where}: invalid tag`);
    if (typeof image !== "string" || !isRepositoryPath(image))
      throw new PlanDocumentError(`${where}: invalid image`);
    for (const [name, text] of Object.entries({
      project,
      source,
      destination,
      sourceRegistry,
      destinationRegistry,
    })) {
      if (typeof text !== "string") throw new PlanDocumentError(`${where}: invalid ${name}`);
    }
    const position = parsePosition(item.position, where);
    const registry = (name: unknown, src: boolean): RegistryEntry => ({
      name: name as string,
      location: undefined,
      src,
      position,
    });
    return {
      where,
      edge: {
        project: project as string,
        image,
        digest,
        ...(tag === null ? {} : { tag }),
        source: parseLocation(item.sourceLocation, `${where}.sourceLocation`),
        destination: parseLocation(item.destinationLocation, `${where}.destinationLocation`),
        sourceRegistry: registry(sourceRegistry, true),
        destinationRegistry: registry(destinationRegistry, false),
        position,
      },
      source: source as string,
      destination: destination as string,
      decision: item.decision,
      currentDigest: item.currentDigest,
    };
  });
}

function parsePosition(value: unknown, where: string): SourcePosition {
  if (isJsonObject(value)) {
    const { file, line, column } = value;
    if (typeof file === "string" && typeof line === "number" && typeof column === "number") {
      return { file, line, column };
    }
  }
  throw new PlanDocumentError(`${where}: invalid position`);
}

/**
 * What identifies an edge when a saved plan is matched with the manifests: every field that is
 * executed or shown (project, image, digest, tag, registry names, locations, display names);
 * only the position and the decision are left out (the decision is re-checked as drift).
 * Locations are shared per repository, so their part of the key is made once.
 */
class PlanEdgeKeys {
  private readonly repositoryKeys = new RepositoryKeyCache();
  private readonly locationKeys = new WeakMap<RepositoryLocation, string>();

  /** An edge the manifests produce: its display names are made from its locations. */
  ofEdge(edge: PromotionEdge): string {
    return this.key(edge, this.repositoryKeys.of(edge.source), this.repositoryKeys.of(edge.destination));
  }

  ofSaved(saved: SavedPlanEdge): string {
    return this.key(saved.edge, saved.source, saved.destination);
  }

  private key(edge: PromotionEdge, source: string, destination: string): string {
    // Each part is a complete JSON value, so the concatenation cannot be read two ways.
    return (
      JSON.stringify([
        edge.project,
        edge.image,
        edge.digest,
        edge.tag ?? null,
        edge.sourceRegistry.name,
        edge.destinationRegistry.name,
        source,
        destination,
      ]) +
      this.location(edge.source) +
      this.location(edge.destination)
    );
  }

  private location(location: RepositoryLocation): string {
    let key = this.locationKeys.get(location);
    if (key === undefined) {
      key = JSON.stringify(jsonLocation(location));
      this.locationKeys.set(location, key);
    }
    return key;
  }
}

/** Every decision kind (the keys of the decisions summary). */
const DECISION_KINDS: ReadonlySet<string> = new Set(Object.keys(countDecisions([])));

function isEdgeDecisionKind(value: unknown): value is EdgeDecisionKind {
  return typeof value === "string" && DECISION_KINDS.has(value);
}

/** `source -> destination:tag@digest`, from a saved edge's parsed (so printable) fields. */
function savedEdgeText(saved: SavedPlanEdge): string {
  const { edge } = saved;
  const tag = edge.tag === undefined ? "" : `:${edge.tag}`;
  return `${formatRepositoryLocation(edge.source)} -> ${formatRepositoryLocation(edge.destination)}${tag}@${edge.digest}`;
}

/**
 * A saved plan bound to the manifests it must come from (`promote --from-plan`). The plan only
 * selects: the run executes edges the manifests produce (with their locations, names and
 * positions), those whose every executed or shown field matches an edge of the plan. An edge of
 * the plan that the manifests do not produce (tampered with, or the manifests changed since) is
 * refused by name, and so is one whose decision is no longer the one planned.
 */
export class PlanBinding {
  private readonly keys = new PlanEdgeKeys();
  private readonly saved = new Map<string, SavedPlanEdge>();
  private readonly matched = new Set<string>();

  constructor(edges: readonly SavedPlanEdge[]) {
    for (const edge of edges) {
      const key = this.keys.ofSaved(edge);
      if (!this.saved.has(key)) this.saved.set(key, edge);
    }
  }

  /** The filter for planning the manifests: whether the plan names this edge (it is noted). */
  readonly includes = (edge: PromotionEdge): boolean => {
    const key = this.keys.ofEdge(edge);
    if (!this.saved.has(key)) return false;
    this.matched.add(key);
    return true;
  };

  /** One line per edge of the plan that no edge of the manifests matched (after planning). */
  undeclared(): string[] {
    const lines: string[] = [];
    for (const [key, saved] of this.saved) {
      if (this.matched.has(key)) continue;
      lines.push(`${saved.where}: ${savedEdgeText(saved)}: not declared by the manifests`);
    }
    return lines;
  }

  /**
   * How the fresh plan differs from the saved one: every edge whose decision (or the digest a
   * refused tag points at) is not what the saved plan said. Empty when the plan still holds.
   */
  drift(fresh: readonly PlannedEdge[]): string[] {
    const differences: string[] = [];
    for (const { edge, decision } of fresh) {
      const old = this.saved.get(this.keys.ofEdge(edge));
      if (!old) continue;
      const current = decision.kind === "refused-tag-move" ? decision.current : undefined;
      if (old.decision !== decision.kind || old.currentDigest !== current) {
        const what = `${formatRepositoryLocation(edge.destination)}${edge.tag === undefined ? "" : `:${edge.tag}`}@${edge.digest}`;
        const planned = isEdgeDecisionKind(old.decision) ? old.decision : "something else";
        differences.push(
          `${what}: planned ${planned}, now ${decision.kind}${current ? ` (tag points at ${current})` : ""}`,
        );
      }
    }
    return differences;
  }
}
