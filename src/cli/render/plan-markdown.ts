import { plural } from "../../output/quantities.js";
import type { DestinationLine, ImageGroup, RowStatus } from "../../plan/index.js";
import { markdownCode, markdownText } from "../../output/encode.js";
import { abbreviatedList, positionText, shortDigest } from "../format.js";

/**
 * The plan or result as GitHub-flavoured markdown, for a pull-request comment or a CI job
 * summary: a totals table, then one table row per distinct action. Problems come first. Every
 * value is a `markdownCode` span or `markdownText`: names and registry messages render as
 * themselves, never as markup or HTML.
 */

const LABEL: Record<RowStatus, string> = {
  copy: "copy",
  copied: "copied",
  "add-tag": "add tag",
  tagged: "tagged",
  unchanged: "unchanged",
  "refused-tag-move": ":x: refused tag move",
  "missing-source": ":x: missing in source",
  "refused-conflict": ":x: conflicting claims",
  "refused-source-signature": ":x: source not signed",
  unreadable: ":x: cannot read registry",
  failed: ":x: failed",
};

export function planMarkdown(
  groups: readonly ImageGroup[],
  options: { cwd: string; title: string; totals: readonly [string, number][] },
): string {
  const out: string[] = [`### ${options.title}`, ""];
  out.push("| | edges |", "|---|---:|");
  for (const [label, count] of options.totals)
    out.push(`| ${markdownText(label)} | ${count.toLocaleString("en-US")} |`);
  out.push("");
  const rows: { problem: boolean; text: string }[] = [];
  let quiet = 0;
  for (const group of groups) {
    let listed = false;
    for (const digest of group.digests) {
      for (const line of digest.lines) {
        listed = true;
        rows.push({
          problem: line.kind === "problem",
          text: rowText(group, digest.digest, line, options.cwd),
        });
      }
    }
    if (!listed) quiet += 1;
  }
  if (rows.length > 0) {
    out.push("| image | digest | tags | action | destinations |", "|---|---|---|---|---|");
    for (const row of [...rows.filter((r) => r.problem), ...rows.filter((r) => !r.problem)])
      out.push(row.text);
    out.push("");
  } else {
    out.push("Nothing to do: every edge is already promoted.", "");
  }
  if (quiet > 0) out.push(`${plural(quiet, "image")} already promoted everywhere, not listed.`, "");
  return out.join("\n");
}

function rowText(group: ImageGroup, digest: string, line: DestinationLine, cwd: string): string {
  const digestText = line.kind === "problem" ? digest : shortDigest(digest);
  let action = LABEL[line.status];
  if (line.detail) action += `: ${markdownText(line.detail)}`;
  if (line.position) action += ` (${markdownCode(positionText(cwd, line.position))})`;
  const tags = line.tags.length > 0 ? line.tags.map((tag) => markdownCode(tag)).join(", ") : "(no tag)";
  const destinations = `${line.destinations.length}: ${markdownText(abbreviatedList(line.destinations))}`;
  return `| ${markdownCode(group.image)} | ${markdownCode(digestText)} | ${tags} | ${action} | ${destinations} |`;
}
