import { plural } from "../../output/quantities.js";
import {
  FINDINGS_FAIL_ON,
  judgeFindings,
  validate,
  type Finding,
  type FindingsFailOn,
  type SourcePosition,
  type ValidationResult,
} from "../../manifest/index.js";
import { loadManifestsAtRevision } from "../../gitops/index.js";
import { loadManifests } from "../../manifest-files/index.js";
import { jsonText, textLines } from "../../output/encode.js";
import { stringOption, type Command } from "../command.js";
import { findingText, positionText, relativeFile } from "../format.js";
import { ExitCode, type CliIO } from "../io.js";
import { manifestInputFromOptions } from "../manifest-options.js";
import { registryPolicyFromOptions, registryPolicyOptionSpecs } from "../registry-policy-options.js";

const OUTPUT_FORMATS = ["text", "json"] as const;
type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Version of the `--output json` document; bump on incompatible changes (docs/manifest-format.md). */
export const VALIDATE_JSON_VERSION = 1;

/**
 * `promoter validate`: everything that can be known from the manifests alone, without asking
 * any registry. The JSON form is documented in docs/manifest-format.md.
 */
export const validateCommand: Command = {
  words: ["validate"],
  summary: "Check promotion manifests without contacting any registry",
  usage:
    "validate (--manifest FILE | --thin-manifest-dir DIR) [--output text|json] [--changed-since REV]\n" +
    "        [--fail-on-findings all|new] [--allow-registry NAME ...]",
  description: `
Reads a plain promotion manifest (registries and images in one file) or a thin-manifest tree
(DIR/manifests/<project>/promoter-manifest.yaml with DIR/images/<project>/images.yaml) and
reports every problem at once, each as FILE:LINE:COLUMN: SEVERITY[RULE]: MESSAGE with a hint.
Paths are shown relative to the current directory. Then prints a summary: projects, images,
digests, tags, destinations and promotion edges (one per image, digest and tag, per destination).
Files are read only from inside DIR (or the folder of FILE): a link that leaves it, or a
folder, FIFO or device where a file belongs, is refused (refused-file) and never shown.

Registries on this machine or a private network (loopback, private and link-local addresses,
localhost) and oci: layouts outside the tree are errors unless allowed with --allow-registry; a
thin tree's manifests/registry-policy.yaml, when present, lists the public registries it may name.

With --changed-since REV (a git revision such as HEAD^ or origin/main, read from the git
repository holding the current directory) only errors the manifests did not have at REV fail;
older ones are reported as warnings that say so (--fail-on-findings new, the default there).
--fail-on-findings all makes every error fail again; --fail-on-findings new without
--changed-since reports every error as a warning (docs/manifest-format.md, "Old and new findings").

Exit status: 0 when no error fails (warnings do not fail), 1 when errors fail, 2 when the input
cannot be read or the flags are wrong.
Rules, the registry policy and the JSON format: docs/manifest-format.md.`,
  options: {
    manifest: { type: "string", valueName: "FILE", description: "A plain promotion manifest file" },
    "thin-manifest-dir": {
      type: "string",
      valueName: "DIR",
      description: "A thin-manifest tree (with manifests/ and images/)",
    },
    output: { type: "string", valueName: "FORMAT", description: "text (default) or json" },
    "changed-since": {
      type: "string",
      valueName: "REV",
      description: "Judge the change since this git revision: errors REV already had do not fail",
    },
    "fail-on-findings": {
      type: "string",
      valueName: "WHICH",
      description: "Errors that fail: all (default) or new (default with --changed-since)",
    },
    ...registryPolicyOptionSpecs,
  },
  async run({ io, values }) {
    const output: OutputFormat = stringOption(values, "output", OUTPUT_FORMATS) ?? "text";
    const input = manifestInputFromOptions(values);
    const registryPolicy = await registryPolicyFromOptions(values, io, input);
    const changedSince = stringOption(values, "changed-since");
    const failOn: FindingsFailOn =
      stringOption(values, "fail-on-findings", FINDINGS_FAIL_ON) ??
      (changedSince === undefined ? "all" : "new");
    const set = await loadManifests(input, { signal: io.signal, cwd: io.cwd, registryPolicy });
    // Only the base's findings are needed here: no edge comparison.
    const base =
      changedSince === undefined
        ? undefined
        : await loadManifestsAtRevision(input, changedSince, { cwd: io.cwd, signal: io.signal });
    const result = judgedValidation(validate(set), base?.set.findings, failOn);
    writeValidation(io, result, output);
    return result.ok ? ExitCode.ok : ExitCode.failed;
  },
};

/** The validation with the findings that do not fail the run shown as warnings (judgeFindings). */
export function judgedValidation(
  result: ValidationResult,
  baseFindings: readonly Finding[] | undefined,
  failOn: FindingsFailOn,
): ValidationResult {
  if (failOn === "all") return result;
  const judged = judgeFindings(result.findings, baseFindings, failOn);
  return {
    ok: judged.ok,
    findings: judged.findings,
    summary: {
      ...result.summary,
      errors: judged.errors,
      warnings: result.summary.warnings + judged.tolerated,
    },
  };
}

/** A count as validate has always printed it: without thousands separators. */
function count(value: number, word: string): string {
  return plural(value, word, `${word}s`, "plain");
}

/**
 * Compiler-style lines: `file:line:col: error[rule]: message`, then indented hint and related
 * places. File names and messages come from the manifests' authors: each line is encoded with
 * `textValue`, so they stay on their line and run nothing in a CI log.
 */
export function validationText(result: ValidationResult, cwd: string): string {
  const lines: string[] = [];
  for (const finding of result.findings) {
    lines.push(findingText(cwd, finding));
    if (finding.hint) lines.push(`    hint: ${finding.hint}`);
    for (const related of finding.related ?? []) lines.push(`    see: ${positionText(cwd, related)}`);
  }
  const summary = result.summary;
  if (lines.length > 0) lines.push("");
  lines.push(
    [
      count(summary.projects, "project"),
      count(summary.images, "image"),
      count(summary.digests, "digest"),
      count(summary.tags, "tag"),
      count(summary.destinations, "destination"),
      count(summary.edges, "promotion edge"),
    ].join(", "),
  );
  lines.push(
    `${count(summary.errors, "error")}, ${count(summary.warnings, "warning")}: ${result.ok ? "valid" : "invalid"}`,
  );
  return `${textLines(lines)}\n`;
}

interface JsonPosition {
  file: string;
  line: number;
  column: number;
}

function jsonPosition(cwd: string, position: SourcePosition): JsonPosition {
  return { file: relativeFile(cwd, position.file), line: position.line, column: position.column };
}

function jsonFinding(cwd: string, finding: Finding) {
  return {
    severity: finding.severity,
    rule: finding.rule,
    message: finding.message,
    hint: finding.hint ?? null,
    ...jsonPosition(cwd, finding.position),
    related: (finding.related ?? []).map((position) => jsonPosition(cwd, position)),
  };
}

/** The `--output json` document (schema in docs/manifest-format.md). */
export function validationJson(result: ValidationResult, cwd: string) {
  return {
    version: VALIDATE_JSON_VERSION,
    ok: result.ok,
    summary: result.summary,
    findings: result.findings.map((finding) => jsonFinding(cwd, finding)),
  };
}

/** Prints a validation result in the chosen format; other commands that validate first reuse it. */
export function writeValidation(io: CliIO, result: ValidationResult, output: "text" | "json"): void {
  if (output === "json") io.stdout.write(`${jsonText(validationJson(result, io.cwd), 2)}\n`);
  else io.stdout.write(validationText(result, io.cwd));
}
