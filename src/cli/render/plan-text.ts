import { plural } from "../../output/quantities.js";
import type { DestinationLine, ImageGroup, RowStatus } from "../../plan/index.js";
import { textLines } from "../../output/encode.js";
import { abbreviatedList, positionText, shortDigest } from "../format.js";

/**
 * The plan (or the run's result) as text for a terminal or a CI log: grouped by image, one line
 * per distinct action with the destinations that share it, problems first with the manifest
 * line to fix. Images with nothing to do are counted, not listed. Each line is encoded with
 * `textValue`: names and registry messages in it stay on it and run nothing.
 */

const VERB: Record<RowStatus, string> = {
  copy: "copy",
  copied: "copied",
  "add-tag": "add tag",
  tagged: "tagged",
  unchanged: "unchanged",
  "refused-tag-move": "refused tag move",
  "missing-source": "missing in source",
  "refused-conflict": "refused: conflicting claims",
  "refused-source-signature": "refused: source not signed",
  unreadable: "cannot read registry",
  failed: "failed",
};

function destinationsText(line: DestinationLine): string {
  const count = line.destinations.length;
  return `${plural(count, "destination")}: ${abbreviatedList(line.destinations)}`;
}

function lineText(line: DestinationLine, cwd: string): string[] {
  const tags = line.tags.length > 0 ? line.tags.join(", ") : "(no tag)";
  if (line.kind === "copy") {
    const tagging = line.tags.length > 0 ? `, tag ${tags}` : "";
    return [`${VERB[line.status]}${tagging} -> ${destinationsText(line)}`];
  }
  if (line.kind === "tag") {
    return [`${VERB[line.status]} ${tags} -> ${destinationsText(line)}`];
  }
  const detail = line.detail
    ? `: ${line.tags.length > 0 ? `${tags} ` : ""}${line.detail}`
    : line.tags.length > 0
      ? `: ${tags}`
      : "";
  const lines = [`x ${VERB[line.status]}${detail} -> ${destinationsText(line)}`];
  if (line.position) lines.push(`    at ${positionText(cwd, line.position)}`);
  return lines;
}

export interface PlanTextOptions {
  readonly cwd: string;
  /** Header line, e.g. "Promotion plan (dry run: nothing written; add --confirm to promote)". */
  readonly title: string;
  /** List only problem lines (after a run whose plan was already printed). */
  readonly onlyProblems?: boolean;
}

export function planText(groups: readonly ImageGroup[], options: PlanTextOptions): string {
  const out: string[] = [options.title, ""];
  let quietImages = 0;
  let quietEdges = 0;
  for (const group of groups) {
    const shown = (line: DestinationLine): boolean => !options.onlyProblems || line.kind === "problem";
    const active = group.digests.filter((digest) => digest.lines.some(shown));
    if (active.length === 0) {
      quietImages += 1;
      quietEdges += group.edges;
      continue;
    }
    out.push(`${group.image}  (project ${group.project}; from ${group.source})`);
    for (const digest of active) {
      const tags = digest.tags.length > 0 ? `  ${digest.tags.join(", ")}` : "  (no tag)";
      const hasProblem = digest.lines.some((line) => line.kind === "problem");
      out.push(`  ${hasProblem ? digest.digest : shortDigest(digest.digest)}${tags}`);
      for (const line of digest.lines)
        for (const text of lineText(line, options.cwd)) out.push(`    ${text}`);
    }
    if (group.unchanged > 0 && !options.onlyProblems) {
      out.push(`  (${plural(group.unchanged, "edge")} of this image already promoted)`);
    }
    out.push("");
  }
  if (quietImages > 0 && !options.onlyProblems) {
    out.push(
      `${plural(quietImages, "image")} already promoted everywhere (${plural(quietEdges, "edge")}), not listed.`,
      "",
    );
  }
  return textLines(out);
}
