import { plural } from "../../output/quantities.js";
import type { CheckItem, CheckReport, CheckStatus } from "../../gitops/index.js";
import { markdownCode, markdownText, textLines } from "../../output/encode.js";
import { positionText, relativeFile } from "../format.js";

/**
 * `promoter check` output: text for CI logs, markdown for a pull-request comment or the job
 * summary, JSON for programs (schema `image-promoter/check`, documented in docs/owners.md).
 * The pull request's author names the files and writes the scalars that end up in messages, and
 * registries write the errors: text lines go through `textLines`, markdown values through
 * `markdownCode` and `markdownText`, so none of it becomes a runner command, markup or HTML.
 */

export const CHECK_DOCUMENT_SCHEMA = "image-promoter/check";
export const CHECK_DOCUMENT_VERSION = 1;

const TEXT_STATUS: Record<CheckStatus, string> = {
  pass: "PASS",
  warn: "WARN",
  fail: "FAIL",
  skipped: "SKIP",
};
const MARKDOWN_STATUS: Record<CheckStatus, string> = {
  pass: ":white_check_mark: pass",
  warn: ":warning: warn",
  fail: ":x: fail",
  skipped: ":heavy_minus_sign: skipped",
};
const TEXT_MARK: Record<CheckItem["severity"], string> = { error: "x", warning: "!", notice: "-" };

function shortCommit(commit: string): string {
  return commit.slice(0, 12);
}

function headline(report: CheckReport): string {
  const failed = report.checks.filter((check) => check.status === "fail").length;
  return failed === 0 ? "passed" : `${plural(failed, "check")} failed`;
}

function overview(report: CheckReport): string {
  return `base ${report.base.revision} (${shortCommit(report.base.commit)}), ${plural(report.changedFiles.length, "changed file")}, ${plural(report.edges.added, "new edge")}, ${plural(report.edges.removed, "removed edge")}`;
}

export function checkText(report: CheckReport, cwd: string): string {
  const lines = [`promoter check: ${overview(report)}`, ""];
  for (const check of report.checks) {
    lines.push(`${TEXT_STATUS[check.status]}  ${check.title}: ${check.summary}`);
    for (const item of check.items) {
      const where = item.position ? `${positionText(cwd, item.position)}: ` : "";
      lines.push(`      ${TEXT_MARK[item.severity]} ${where}${item.message}`);
      if (item.hint) lines.push(`        hint: ${item.hint}`);
    }
  }
  lines.push("", report.ok ? "Result: PASS" : `Result: FAIL (${headline(report)})`);
  return `${textLines(lines)}\n`;
}

export function checkMarkdown(report: CheckReport, cwd: string): string {
  const out = [
    `### promoter check: ${report.ok ? ":white_check_mark:" : ":x:"} ${headline(report)}`,
    "",
    `Base ${markdownCode(report.base.revision)} (${markdownCode(shortCommit(report.base.commit))}), ${plural(report.changedFiles.length, "changed file")}, ${plural(report.edges.added, "new edge")}, ${plural(report.edges.removed, "removed edge")}.`,
    "",
    "| check | result | summary |",
    "|---|---|---|",
    ...report.checks.map(
      (check) =>
        `| ${markdownText(check.title)} | ${MARKDOWN_STATUS[check.status]} | ${markdownText(check.summary)} |`,
    ),
    "",
  ];
  for (const check of report.checks) {
    if (check.items.length === 0) continue;
    out.push(`#### ${MARKDOWN_STATUS[check.status].split(" ")[0] ?? ""} ${markdownText(check.title)}`, "");
    for (const item of check.items) {
      const where = item.position ? `${markdownCode(positionText(cwd, item.position))} ` : "";
      const mark = item.severity === "error" ? "**error**" : item.severity;
      out.push(`- ${mark}: ${where}${markdownText(item.message)}`);
      if (item.hint) out.push(`  <br>_${markdownText(item.hint)}_`);
    }
    out.push("");
  }
  if (report.changedFiles.length > 0) {
    out.push(
      "<details><summary>Changed files</summary>",
      "",
      ...report.changedFiles.map((file) => `- ${markdownCode(relativeFile(cwd, file))}`),
      "",
      "</details>",
      "",
    );
  }
  return out.join("\n");
}

export function checkJson(report: CheckReport, cwd: string): unknown {
  return {
    schema: CHECK_DOCUMENT_SCHEMA,
    version: CHECK_DOCUMENT_VERSION,
    ok: report.ok,
    base: report.base,
    changedFiles: report.changedFiles.map((file) => relativeFile(cwd, file)),
    edges: report.edges,
    decisions: report.decisions,
    checks: report.checks.map((check) => ({
      id: check.id,
      title: check.title,
      status: check.status,
      summary: check.summary,
      items: check.items.map((item) => ({
        severity: item.severity,
        message: item.message,
        ...(item.position
          ? {
              file: relativeFile(cwd, item.position.file),
              line: item.position.line,
              column: item.position.column,
            }
          : {}),
        ...(item.hint ? { hint: item.hint } : {}),
      })),
    })),
  };
}
