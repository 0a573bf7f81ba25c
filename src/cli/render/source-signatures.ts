import { formatRepositoryLocation } from "../../reference/index.js";
import type { SourceSignatureReport } from "../../promote/index.js";
import { markdownCode, textLines } from "../../output/encode.js";
import { shortDigest } from "../format.js";

/**
 * What the source signature policy found, for people: counts per verdict and each staging digest
 * promoted without a signature in `if-present` mode ("source unsigned (not required)"). Refused
 * digests are in the image plan with their reason; the JSON plan and report have every verdict
 * (promote/report.ts, `sourceSignatures`).
 */

function counts(report: SourceSignatureReport): string {
  const count = { verified: 0, unsigned: 0, refused: 0 };
  for (const verdict of report.verdicts) count[verdict.status] += 1;
  return [
    `${count.verified} verified`,
    ...(report.mode === "if-present" ? [`${count.unsigned} unsigned (not required)`] : []),
    `${count.refused} refused`,
  ].join(", ");
}

function unsigned(report: SourceSignatureReport): string[] {
  return report.verdicts
    .filter((verdict) => verdict.status === "unsigned")
    .map(
      (verdict) =>
        `${formatRepositoryLocation(verdict.request.location)}@${shortDigest(verdict.request.digest)}`,
    )
    .sort();
}

/**
 * Staging's build provenance of the digests promoted: "Build provenance: 2 verified, 1 absent
 * (not required)"; empty when no rule reads it. Refusals are in the image plan.
 */
function provenanceCounts(report: SourceSignatureReport): string | undefined {
  const promoted = report.verdicts.filter((verdict) => verdict.status !== "refused");
  const verified = promoted.filter((verdict) => verdict.provenance === "verified").length;
  const absent = promoted.filter((verdict) => verdict.provenance === "absent").length;
  if (verified + absent === 0) return undefined;
  return `Build provenance: ${verified} verified, ${absent} absent (not required)`;
}

export function sourceSignaturesText(report: SourceSignatureReport): string {
  if (report.verdicts.length === 0) return "";
  const provenance = provenanceCounts(report);
  return textLines([
    "",
    `Source signatures (${report.mode}): ${counts(report)}`,
    ...unsigned(report).map((name) => `  ${name}  source unsigned (not required)`),
    ...(provenance === undefined ? [] : [provenance]),
    "",
  ]);
}

export function sourceSignaturesMarkdown(report: SourceSignatureReport): string {
  if (report.verdicts.length === 0) return "";
  const lines = unsigned(report).map((name) => `- ${markdownCode(name)} source unsigned (not required)`);
  const provenance = provenanceCounts(report);
  return `\n### Source signatures (${report.mode})\n\n${counts(report)}\n${lines.length > 0 ? `\n${lines.join("\n")}\n` : ""}${provenance === undefined ? "" : `\n${provenance}\n`}`;
}
