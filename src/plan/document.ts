import { PromoterError } from "../errors.js";
import { conflictDigests, type RegistryEntry, type SourcePosition } from "../manifest/index.js";
import {
  isDigest,
  isRepositoryPath,
  isTag,
  registryHostProblem,
  type RegistryHost,
  type RepositoryLocation,
} from "../reference/index.js";
import { RepositoryKeys, type EdgeDecision, type EdgeDecisionKind, type PlannedEdge } from "./decide.js";
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
  keys: RepositoryKeys,
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

function parseLocation(value: unknown, where: string): RepositoryLocation {
  const fail = (): never => {
    throw new PlanDocumentError(`${where}: not a repository location`);
  };
  if (typeof value !== "object" || value === null) return fail();
  const record = value as Record<string, unknown>;
  const repository = record.repository;
  if (typeof repository !== "string" || !isRepositoryPath(repository)) return fail();
  if (record.kind === "remote" && typeof record.host === "string" && !registryHostProblem(record.host)) {
    return { kind: "remote", host: record.host as RegistryHost, repository: repository };
  }
  if (record.kind === "oci-layout" && typeof record.directory === "string" && record.directory.length > 0) {
    return { kind: "oci-layout", directory: record.directory, repository: repository };
  }
  return fail();
}

/**
 * Edges and their planned decisions from a saved plan. Locations are shared per repository again
 * so re-planning stays cheap; registry entries carry only what messages need (the name).
 */
export function edgesFromDocument(document: unknown): { edges: PromotionEdge[]; decisions: JsonEdge[] } {
  if (typeof document !== "object" || document === null) throw new PlanDocumentError("not a JSON object");
  const record = document as Record<string, unknown>;
  if (record.schema !== PLAN_DOCUMENT_SCHEMA) {
    throw new PlanDocumentError(`not a promotion plan (schema ${JSON.stringify(record.schema)})`);
  }
  if (record.version !== PLAN_DOCUMENT_VERSION) {
    throw new PlanDocumentError(
      `plan version ${JSON.stringify(record.version)} is not supported (expected ${PLAN_DOCUMENT_VERSION})`,
    );
  }
  if (!Array.isArray(record.edges)) throw new PlanDocumentError("the plan has no edges list");
  const locations = new Map<string, RepositoryLocation>();
  const registries = new Map<string, RegistryEntry>();
  const shared = (value: unknown, where: string): RepositoryLocation => {
    const location = parseLocation(value, where);
    const key = JSON.stringify(location);
    const existing = locations.get(key);
    if (existing) return existing;
    locations.set(key, location);
    return location;
  };
  const registry = (name: unknown, src: boolean, position: SourcePosition): RegistryEntry => {
    const text = typeof name === "string" ? name : "";
    const key = `${src ? "src" : "dst"}\u0000${text}`;
    let entry = registries.get(key);
    if (!entry) {
      entry = { name: text, location: undefined, src, position };
      registries.set(key, entry);
    }
    return entry;
  };
  const edges: PromotionEdge[] = [];
  const decisions: JsonEdge[] = [];
  record.edges.forEach((value: unknown, index) => {
    const where = `edges[${index}]`;
    if (typeof value !== "object" || value === null) throw new PlanDocumentError(`${where}: not an object`);
    const item = value as Record<string, unknown>;
    const digest = item.digest;
    const tag = item.tag;
    const image = item.image;
    if (typeof digest !== "string" || !isDigest(digest))
      throw new PlanDocumentError(`${where}: invalid digest`);
    if (tag !== null && (typeof tag !== "string" || !isTag(tag)))
      throw new PlanDocumentError(`${where}: invalid tag`);
    if (typeof image !== "string" || !isRepositoryPath(image))
      throw new PlanDocumentError(`${where}: invalid image`);
    const position = parsePosition(item.position, where);
    edges.push({
      project: typeof item.project === "string" ? item.project : "",
      image,
      digest: digest,
      ...(tag === null ? {} : { tag: tag }),
      source: shared(item.sourceLocation, `${where}.sourceLocation`),
      destination: shared(item.destinationLocation, `${where}.destinationLocation`),
      sourceRegistry: registry(item.sourceRegistry, true, position),
      destinationRegistry: registry(item.destinationRegistry, false, position),
      position,
    });
    decisions.push(item as unknown as JsonEdge);
  });
  return { edges, decisions };
}

function parsePosition(value: unknown, where: string): SourcePosition {
  if (typeof value === "object" && value !== null) {
    const { file, line, column } = value as Record<string, unknown>;
    if (typeof file === "string" && typeof line === "number" && typeof column === "number") {
      return { file, line, column };
    }
  }
  throw new PlanDocumentError(`${where}: invalid position`);
}

/**
 * How a fresh plan differs from a saved one: every edge whose decision (or the digest a moved tag
 * points at) is not what the saved plan said. Empty when the registries still match the plan.
 */
export function planDrift(saved: readonly JsonEdge[], fresh: readonly PlannedEdge[]): string[] {
  const differences: string[] = [];
  const keys = new RepositoryKeys();
  fresh.forEach(({ edge, decision }, index) => {
    const old = saved[index];
    if (!old) return;
    const current = decision.kind === "refused-tag-move" ? decision.current : undefined;
    if (old.decision !== decision.kind || old.currentDigest !== current) {
      const what = `${keys.of(edge.destination)}${edge.tag === undefined ? "" : `:${edge.tag}`}@${edge.digest}`;
      differences.push(
        `${what}: planned ${old.decision}, now ${decision.kind}${current ? ` (tag points at ${current})` : ""}`,
      );
    }
  });
  return differences;
}
