import type { Finding } from "./model.js";

/**
 * Findings of a change against the findings its base already had: which ones the change brought,
 * and which were there before (a broken entry someone else left in a file nobody touched). A
 * change-scoped run fails on the first kind only, so one old mistake in a 20,000-digest tree
 * does not turn every later promotion red (docs/manifest-format.md, "Old and new findings").
 * Pure.
 */

/** Which error findings fail a run: every one, or only those a change brought. */
export type FindingsFailOn = "all" | "new";

export const FINDINGS_FAIL_ON: readonly FindingsFailOn[] = ["all", "new"];

/**
 * Two findings are the same finding when they name the same file, rule and message: line numbers
 * move when lines are added above, and the message names the values involved (the digest, tag or
 * registry), so an edited entry is a new finding even on the same line.
 */
function findingIdentity(finding: Finding): string {
  return `${finding.position.file}\u0000${finding.rule}\u0000${finding.message}`;
}

/**
 * For each finding of `head`, whether `base` already had it. Counted as a multiset: a second
 * copy of an old mistake is new.
 */
export function preexistingFindings(head: readonly Finding[], base: readonly Finding[]): boolean[] {
  const before = new Map<string, number>();
  for (const finding of base) {
    const key = findingIdentity(finding);
    before.set(key, (before.get(key) ?? 0) + 1);
  }
  return head.map((finding) => {
    const key = findingIdentity(finding);
    const earlier = before.get(key) ?? 0;
    if (earlier === 0) return false;
    before.set(key, earlier - 1);
    return true;
  });
}

export interface JudgedFindings {
  /**
   * Every finding, in order. Errors that do not fail the run are shown as warnings, their
   * message saying why; the entries stay skipped either way (an invalid entry is never promoted).
   */
  readonly findings: readonly Finding[];
  /** Errors that fail the run. */
  readonly errors: number;
  /** Errors reported as warnings because they are old. */
  readonly tolerated: number;
  /** True when no error fails the run. */
  readonly ok: boolean;
}

/**
 * Errors a full run cannot report as harmless: a tag claimed for several digests has its edges
 * refused in the plan, and a full run plans every edge, so the run fails on them whatever the
 * finding says (kpromo stops on "overlapping edges detected" too). A change-scoped run plans only
 * the edges the change added, so an old conflict stays a warning there.
 */
const FAILS_EVERY_FULL_RUN: ReadonlySet<string> = new Set(["tag-conflict"]);

/**
 * Which findings fail a run. `base` is the findings at the change's base revision, or undefined
 * for a full run (no change: every finding is old, but a tag conflict, whose refused edges fail a
 * full run, stays an error). With `failOn: "all"` every error fails; with `"new"` only errors
 * `base` did not have.
 */
export function judgeFindings(
  head: readonly Finding[],
  base: readonly Finding[] | undefined,
  failOn: FindingsFailOn,
): JudgedFindings {
  const old =
    failOn === "all"
      ? head.map(() => false)
      : base
        ? preexistingFindings(head, base)
        : head.map((finding) => !FAILS_EVERY_FULL_RUN.has(finding.rule));
  let errors = 0;
  let tolerated = 0;
  const findings = head.map((finding, index) => {
    if (finding.severity !== "error") return finding;
    if (!old[index]) {
      errors += 1;
      return finding;
    }
    tolerated += 1;
    const why = base ? "already there before this change" : "a full run judges no change";
    return {
      ...finding,
      severity: "warning" as const,
      message: `${finding.message} (error, ${why}: the entry is skipped, the run does not fail)`,
    };
  });
  return { findings, errors, tolerated, ok: errors === 0 };
}
