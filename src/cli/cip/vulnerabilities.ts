import { UsageError } from "../../errors.js";
import {
  applyVulnerabilityGate,
  reportedDigests,
  type SeverityThreshold,
  type VulnerabilityReport,
} from "../../gitops/index.js";
import type { PlannedPromotion } from "../../promote/index.js";
import { plural } from "../../output/quantities.js";
import { ExitCode, writeLine, type CliIO } from "../io.js";

/**
 * `cip --vuln-severity-threshold N`: kpromo's vulnerability-only mode. It plans the promotion,
 * and with --confirm judges the images that would be copied or tagged instead of promoting
 * them. kpromo reads the findings from Google's Container Analysis (fixable ones only); here
 * they come from --vuln-report files (Trivy, Grype, SARIF), and an image no report names by
 * digest fails, as it does in `promoter check`: a check that cannot judge does not pass.
 */

/** kpromo's scale (0 UNSPECIFIED, 1 MINIMAL, 2 LOW, 3 MEDIUM, 4 HIGH, 5 CRITICAL) onto ours. */
export function kpromoSeverity(level: number): { threshold: SeverityThreshold; note?: string } {
  switch (level) {
    case 0:
    case 1:
      return {
        threshold: "LOW",
        note: `--vuln-severity-threshold ${level} (${level === 0 ? "UNSPECIFIED" : "MINIMAL"}) has no level below LOW in the reports read here: LOW is used`,
      };
    case 2:
      return { threshold: "LOW" };
    case 3:
      return { threshold: "MEDIUM" };
    case 4:
      return { threshold: "HIGH" };
    case 5:
      return { threshold: "CRITICAL" };
    default:
      throw new UsageError(
        `--vuln-severity-threshold must be between 0 and 5 (kpromo's scale), not ${level}`,
      );
  }
}

export function judgeVulnerabilities(
  io: CliIO,
  planned: PlannedPromotion,
  reports: readonly { readonly file: string; readonly report: VulnerabilityReport }[],
  threshold: SeverityThreshold,
): number {
  const wanted = new Map<string, string>();
  for (const { edge, decision } of planned.plan.edges) {
    if (decision.kind !== "copy" && decision.kind !== "add-tag") continue;
    wanted.set(edge.digest, `${edge.sourceRegistry.name}/${edge.image}@${edge.digest}`);
  }
  const scanned = new Set<string>();
  let failing = 0;
  for (const { file, report } of reports) {
    for (const digest of reportedDigests(report)) scanned.add(digest);
    const gate = applyVulnerabilityGate(report.findings, threshold);
    failing += gate.failing.length;
    for (const finding of gate.failing) {
      const where = finding.package ? ` in ${finding.package}` : "";
      writeLine(io.stderr, `error: ${finding.severity} ${finding.id}${where} (${file})`);
    }
  }
  let unscanned = 0;
  for (const [digest, name] of wanted) {
    if (scanned.has(digest)) continue;
    unscanned += 1;
    writeLine(io.stderr, `error: ${name} is not named by any --vuln-report: it was not judged`);
  }
  writeLine(
    io.stderr,
    `promoter cip: vulnerability check of ${plural(wanted.size, "image")} to promote: ${plural(failing, "fixable finding")} at or above ${threshold}, ${plural(unscanned, "image")} without a report; nothing was promoted (kpromo's --vuln-severity-threshold only checks)`,
  );
  return failing > 0 || unscanned > 0 ? ExitCode.failed : ExitCode.ok;
}
