import { readFile, stat } from "node:fs/promises";
import * as path from "node:path";
import { describeError, UsageError } from "../../errors.js";
import {
  MAX_VULNERABILITY_REPORT_BYTES,
  parseVulnerabilityReport,
  runCheck,
  SEVERITY_THRESHOLDS,
  VulnerabilityReportError,
  type SeverityThreshold,
  type VulnerabilityReport,
} from "../../gitops/index.js";
import { booleanOption, integerOption, stringListOption, stringOption, type Command } from "../command.js";
import { jsonText } from "../../output/encode.js";
import { ExitCode, writeLine, type CliIO } from "../io.js";
import { writeOutputFile } from "../output-sink.js";
import { createCliLogger } from "../logger.js";
import { manifestInputFromOptions, manifestOptionSpecs } from "../manifest-options.js";
import { registryOptionSpecs, storeProviderFromOptions } from "../registry-options.js";
import { registryPolicyFromOptions, registryPolicyOptionSpecs } from "../registry-policy-options.js";
import { checkJson, checkMarkdown, checkText } from "./check-render.js";

const OUTPUTS = ["text", "json", "markdown"] as const;
type Output = (typeof OUTPUTS)[number];

const SIZE_UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 1000,
  kb: 1000,
  m: 1000 ** 2,
  mb: 1000 ** 2,
  g: 1000 ** 3,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** `1073741824`, `500MiB`, `1GiB`, `800MB`: bytes. */
export function parseSize(text: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = SIZE_UNITS[(match?.[2] ?? "").toLowerCase()];
  const value = match ? Number(match[1]) * (unit ?? Number.NaN) : Number.NaN;
  if (!Number.isFinite(value) || value <= 0 || value > Number.MAX_SAFE_INTEGER) {
    throw new UsageError(
      `--${option} must be a size in bytes such as 1073741824, 500MiB or 1GiB, not ${JSON.stringify(text)}`,
    );
  }
  return Math.floor(value);
}

/** Reads and parses `--vuln-report` files (also `cip --vuln-severity-threshold`). */
export async function readReports(
  io: CliIO,
  files: readonly string[],
): Promise<{ file: string; report: VulnerabilityReport }[]> {
  const reports: { file: string; report: VulnerabilityReport }[] = [];
  for (const file of files) {
    const absolute = path.resolve(io.cwd, file);
    let text: string;
    try {
      if ((await stat(absolute)).size > MAX_VULNERABILITY_REPORT_BYTES) {
        throw new UsageError(`--vuln-report ${file} is larger than ${MAX_VULNERABILITY_REPORT_BYTES} bytes`);
      }
      text = await readFile(absolute, "utf8");
    } catch (error) {
      if (error instanceof UsageError) throw error;
      throw new UsageError(`cannot read --vuln-report ${file}: ${describeError(error)}`);
    }
    try {
      reports.push({ file, report: parseVulnerabilityReport(text, file) });
    } catch (error) {
      if (error instanceof VulnerabilityReportError) throw new UsageError(error.message);
      throw error;
    }
  }
  return reports;
}

/** `promoter check`: the pre-merge judgement of a change to the manifests (docs/owners.md). */
export const checkCommand: Command = {
  words: ["check"],
  summary: "Judge a change to the manifests against a base git revision (for pull requests)",
  usage:
    "check --base REV (--thin-manifest-dir DIR | --manifest FILE) [--max-image-size BYTES]\n" +
    "        [--vuln-report FILE --vuln-severity-threshold LOW|MEDIUM|HIGH|CRITICAL] [--allow-removals]\n" +
    "        [--output text|json|markdown] [--allow-registry NAME ...]",
  description: `
Compares the manifests at the git revision --base (read from git; nothing is checked out) with
the working copy and judges only what changed:
- validation: new findings in changed files (older findings there are counted, not judged);
- new edges against the live registries, as a dry-run promotion plans them: a tag that already
  points at another digest in a destination (a tag move), or a digest missing in staging, fails;
- removals: an edge removed from the manifests whose tag or digest production still serves.
  Removing lines deletes nothing from the registries; this fails unless --allow-removals;
- image size: every manifest a new digest reaches (compressed layers and config, read from
  staging) over --max-image-size fails, and so does a digest that cannot be measured in full;
- kind changes: a new tag whose previous version in its tag series (the same tag with other
  numbers: v1.2.3 -> v#.#.#) was a multi-platform index but which is a single-platform
  manifest fails (the reverse is a notice), and so does a kind that cannot be read;
  --allow-kind-change makes both a warning;
- vulnerabilities: --vuln-report (Trivy JSON, Grype JSON or SARIF, repeatable) fails on fixable findings at
  or above --vuln-severity-threshold (default HIGH), and when an image the change adds is not
  named by digest in any report.
A check that cannot judge fails. The git repository is the one holding the working directory
(run in the checkout); a git repository inside the manifest tree is refused, and at --base only
regular files are read (a link or submodule there fails the checks that needed it).
When GITHUB_STEP_SUMMARY is set, the markdown report is appended to that file.

Registries the working copy names are checked before any request, by the registry policy of
--base (docs/manifest-format.md): internal addresses and oci: layouts outside the tree only with
--allow-registry, and only registries of manifests/registry-policy.yaml at --base when it exists.

Exit status: 0 every check passed; 1 a check failed or a git repository in the tree was
refused; 2 invalid input or usage (an unknown revision, an unreadable report). Details:
docs/owners.md.`,
  options: {
    base: {
      type: "string",
      valueName: "REV",
      description: "The git revision to compare with (e.g. origin/main)",
    },
    ...manifestOptionSpecs,
    "max-image-size": {
      type: "string",
      valueName: "BYTES",
      description: "Largest download size of one platform image (e.g. 1GiB, 500MB, 1073741824)",
    },
    "vuln-report": {
      type: "string",
      multiple: true,
      valueName: "FILE",
      description: "A Trivy JSON, Grype JSON or SARIF report of the new images (repeatable)",
    },
    "vuln-severity-threshold": {
      type: "string",
      valueName: "LEVEL",
      description: "LOW, MEDIUM, HIGH (default) or CRITICAL: fixable findings at or above it fail",
    },
    "allow-removals": { type: "boolean", description: "Report removed live edges without failing" },
    "allow-kind-change": {
      type: "boolean",
      description: "Report an index replaced by a single-platform image without failing",
    },
    output: { type: "string", valueName: "FORMAT", description: "text (default), json or markdown" },
    concurrency: { type: "string", valueName: "N", description: "Registry requests in flight (default 16)" },
    quiet: { type: "boolean", short: "q", description: "No progress lines on stderr" },
    ...registryPolicyOptionSpecs,
    ...registryOptionSpecs,
  },
  async run({ io, values }) {
    const base = stringOption(values, "base");
    if (base === undefined || base === "")
      throw new UsageError("give --base REV (the revision to compare with)");
    const input = manifestInputFromOptions(values);
    const output: Output = stringOption(values, "output", OUTPUTS) ?? "text";
    const maxText = stringOption(values, "max-image-size");
    const maxImageSize = maxText === undefined ? undefined : parseSize(maxText, "max-image-size");
    const thresholdText = stringOption(values, "vuln-severity-threshold");
    const threshold =
      thresholdText === undefined ? undefined : (thresholdText.toUpperCase() as SeverityThreshold);
    if (threshold !== undefined && !SEVERITY_THRESHOLDS.includes(threshold)) {
      throw new UsageError(
        `--vuln-severity-threshold must be one of ${SEVERITY_THRESHOLDS.join(", ")}, not ${JSON.stringify(thresholdText)}`,
      );
    }
    const reportFiles = stringListOption(values, "vuln-report");
    if (threshold !== undefined && reportFiles.length === 0) {
      throw new UsageError("--vuln-severity-threshold needs --vuln-report FILE");
    }
    const concurrency = integerOption(values, "concurrency", 1, 256);
    const registryPolicy = await registryPolicyFromOptions(values, io, input, base);
    const vulnerabilityReports = await readReports(io, reportFiles);
    const logger = createCliLogger(io.stderr, {
      format: "text",
      level: booleanOption(values, "quiet") ? "warn" : "info",
    });
    const provider = storeProviderFromOptions(values, io, logger);
    try {
      const report = await runCheck({
        registryPolicy,
        input,
        base,
        cwd: io.cwd,
        provider,
        signal: io.signal,
        logger,
        ...(maxImageSize === undefined ? {} : { maxImageSize }),
        vulnerabilityReports,
        ...(threshold === undefined ? {} : { vulnerabilityThreshold: threshold }),
        allowRemovals: booleanOption(values, "allow-removals"),
        allowKindChanges: booleanOption(values, "allow-kind-change"),
        ...(concurrency === undefined ? {} : { concurrency }),
      });
      const markdown = checkMarkdown(report, io.cwd);
      if (output === "json") io.stdout.write(`${jsonText(checkJson(report, io.cwd), 2)}\n`);
      else if (output === "markdown") io.stdout.write(markdown);
      else io.stdout.write(checkText(report, io.cwd));
      const summaryFile = io.env.GITHUB_STEP_SUMMARY;
      if (summaryFile) {
        try {
          await writeOutputFile(io, path.resolve(io.cwd, summaryFile), `${markdown}\n`, { append: true });
        } catch (error) {
          writeLine(
            io.stderr,
            `promoter check: cannot append to GITHUB_STEP_SUMMARY ${summaryFile}: ${describeError(error)}`,
          );
        }
      }
      // A git repository hidden in the tree is a RefusedError: exit 1 (cli/main.ts).
      return report.ok ? ExitCode.ok : ExitCode.failed;
    } finally {
      await provider.close();
    }
  },
};
