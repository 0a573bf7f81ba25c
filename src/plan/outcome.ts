import type { ProblemCode } from "../errors.js";
import { conflictDigests } from "../manifest/index.js";
import type { EdgeDecision } from "./decide.js";
import type { PromotionEdge } from "./edge.js";

/**
 * What happened to an edge in a run that wrote (`--confirm`). The names are part of the CLI
 * contract (the JSON report's `outcome`): copied, tagged, unchanged, refused-tag-move,
 * missing-source, failed.
 */
export type EdgeOutcomeKind =
  "copied" | "tagged" | "unchanged" | "refused-tag-move" | "missing-source" | "failed";

export const EDGE_OUTCOME_KINDS: readonly EdgeOutcomeKind[] = [
  "copied",
  "tagged",
  "unchanged",
  "refused-tag-move",
  "missing-source",
  "failed",
];

export interface EdgeError {
  readonly code: ProblemCode;
  readonly message: string;
  readonly side?: "source" | "destination";
}

export interface EdgeOutcome {
  readonly edge: PromotionEdge;
  readonly decision: EdgeDecision;
  readonly outcome: EdgeOutcomeKind;
  readonly error?: EdgeError;
}

// Settled outcomes without data are shared: the real tree has ~720,000 edges, nearly all unchanged.
const UNCHANGED = Object.freeze({ outcome: "unchanged" as const });
const REFUSED_TAG_MOVE = Object.freeze({ outcome: "refused-tag-move" as const });
const MISSING_SOURCE = Object.freeze({ outcome: "missing-source" as const });

/** The outcome a decision has without any write (everything but copy and add-tag). */
export function outcomeWithoutWrite(
  decision: EdgeDecision,
): { readonly outcome: EdgeOutcomeKind; readonly error?: EdgeError } | undefined {
  switch (decision.kind) {
    case "unchanged":
      return UNCHANGED;
    case "refused-tag-move":
      return REFUSED_TAG_MOVE;
    case "missing-source":
      return MISSING_SOURCE;
    case "refused-conflict":
      return {
        outcome: "failed",
        error: {
          code: "tag-conflict",
          message: `tag ${decision.conflict.tag} is claimed for ${conflictDigests(decision.conflict).length} different digests`,
        },
      };
    case "unreadable":
      return {
        outcome: "failed",
        error: { code: decision.code, message: decision.message, side: decision.side },
      };
    case "refused-source-signature":
      return {
        outcome: "failed",
        error: {
          code: "source-signature",
          message: `the source digest has no valid signature: ${decision.reason}`,
          side: "source",
        },
      };
    case "copy":
    case "add-tag":
      return undefined;
  }
}

/** Outcomes that make the run exit 1. */
export function isFailureOutcome(outcome: EdgeOutcomeKind): boolean {
  return outcome === "refused-tag-move" || outcome === "missing-source" || outcome === "failed";
}
