import {
  buildDesiredState,
  reconcile,
  type ReconcileIssue,
  type ReconcileReport,
} from "../../audit/index.js";
import { UsageError } from "../../errors.js";
import { loadManifests } from "../../manifest-files/index.js";
import { booleanOption, integerOption, stringOption, type Command } from "../command.js";
import { jsonText, markdownCode, markdownText } from "../../output/encode.js";
import { findingText } from "../format.js";
import { ExitCode, writeLine, type CliIO } from "../io.js";
import { registryOptionSpecs, storeProviderFromOptions } from "../registry-options.js";
import { registryPolicyFromOptions, registryPolicyOptionSpecs } from "../registry-policy-options.js";
import { createCliLogger } from "../logger.js";

const OUTPUT_FORMATS = ["text", "json", "markdown"] as const;
type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Version of the `--output json` document; bump on incompatible changes (docs/auditor.md). */
export const RECONCILE_JSON_VERSION = 1;

const ISSUE_TITLES: Readonly<Record<ReconcileIssue["kind"], string>> = {
  "unexpected-tag": "Unexpected tags",
  "wrong-digest": "Tags pointing at the wrong digest",
  "missing-tag": "Missing tags",
  "missing-digest": "Digests missing from mirrors",
  "unexpected-digest": "Unexpected digests",
  "unexpected-repository": "Unexpected repositories",
  unreadable: "Repositories that could not be read",
};

/** `promoter audit reconcile`: the manifests against what production registries hold, once. */
export const auditReconcileCommand: Command = {
  words: ["audit", "reconcile"],
  summary: "Compare production registries with the manifests once (for scheduled CI jobs)",
  usage:
    "audit reconcile (--thin-manifest-dir DIR | --manifest FILE) [--output text|json|markdown]\n" +
    "        [--allow-registry NAME ...]",
  description: `
Reads every production repository the manifests promote into (tags, where they point, whether
each promoted digest is there) and lists unexpected tags, tags pointing at the wrong digest,
missing tags, digests missing from mirrors, unexpected digests (found through tags and the
children of unexpected indexes: registries cannot list untagged manifests) and repositories under
production registries that no manifest names (through _catalog, where the registry offers it).
Signature, attestation and SBOM tags of promoted digests are expected when they hold one (a
runnable image under such a tag is reported).

Registries are checked before any request, as promote checks them (docs/manifest-format.md,
"Registry policy"): one on this machine or a private network, or an oci: layout outside the tree,
is left out with an error unless allowed with --allow-registry, and the tree's
manifests/registry-policy.yaml applies. No connection reaches an internal address except on the
hosts of --allow-registry, whatever a name resolves to.

Exit status: 0 when production matches, 1 when anything is wrong or unreadable (a refused
registry too), 2 on bad input.
Details: docs/auditor.md.`,
  options: {
    manifest: { type: "string", valueName: "FILE", description: "A plain promotion manifest file" },
    "thin-manifest-dir": { type: "string", valueName: "DIR", description: "A thin-manifest tree" },
    output: { type: "string", valueName: "FORMAT", description: "text (default), json or markdown" },
    "no-catalog": {
      type: "boolean",
      description: "Do not list registries for repositories no manifest names",
    },
    concurrency: { type: "string", valueName: "N", description: "Repositories read at once (default 8)" },
    ...registryPolicyOptionSpecs,
    ...registryOptionSpecs,
  },
  async run({ io, values }) {
    const manifest = stringOption(values, "manifest");
    const thinManifestDir = stringOption(values, "thin-manifest-dir");
    if ((manifest === undefined) === (thinManifestDir === undefined)) {
      throw new UsageError("give exactly one of --manifest FILE or --thin-manifest-dir DIR");
    }
    if (manifest === "" || thinManifestDir === "") throw new UsageError("the path must not be empty");
    const output: OutputFormat = stringOption(values, "output", OUTPUT_FORMATS) ?? "text";
    const concurrency = integerOption(values, "concurrency", 1, 256);
    const logger = createCliLogger(io.stderr, { format: "text", level: "warn" });
    const input = manifest !== undefined ? { manifest } : { thinManifestDir: thinManifestDir ?? "" };
    const registryPolicy = await registryPolicyFromOptions(values, io, input);
    const set = await loadManifests(input, { signal: io.signal, cwd: io.cwd, registryPolicy });
    const errors = set.findings.filter((finding) => finding.severity === "error");
    // A registry the policy refuses is not read, so it cannot be said to match: name it, fail.
    const refused = errors.filter((finding) => finding.rule === "registry-not-allowed");
    for (const finding of refused) writeLine(io.stderr, findingText(io.cwd, finding));
    if (errors.length > 0) {
      logger.log(
        "warn",
        `the manifests have ${errors.length} errors; their entries are left out (see promoter validate)`,
      );
    }
    const state = buildDesiredState(set);
    const provider = storeProviderFromOptions(values, io, logger);
    let report: ReconcileReport;
    try {
      report = await reconcile(state, {
        provider,
        logger,
        signal: io.signal,
        catalog: !booleanOption(values, "no-catalog"),
        ...(concurrency === undefined ? {} : { concurrency }),
      });
    } finally {
      await provider.close();
    }
    if (output === "json") io.stdout.write(`${jsonText(reconcileJson(report), 2)}\n`);
    else if (output === "markdown") io.stdout.write(reconcileMarkdown(report));
    else writeReconcileText(io, report);
    return report.issues.length > 0 || refused.length > 0 ? ExitCode.failed : ExitCode.ok;
  },
};

export function reconcileJson(report: ReconcileReport): Record<string, unknown> {
  return {
    version: RECONCILE_JSON_VERSION,
    ok: report.issues.length === 0,
    repositories: report.repositories,
    issues: report.issues.map((issue) => ({
      kind: issue.kind,
      repository: issue.repository,
      tag: issue.tag ?? null,
      digest: issue.digest ?? null,
      ...(issue.expected ? { expected: issue.expected } : {}),
      detail: issue.detail,
    })),
    notes: report.notes,
  };
}

function issueTarget(issue: ReconcileIssue): string {
  return `${issue.repository}${issue.tag === undefined ? "" : `:${issue.tag}`}${issue.digest === undefined ? "" : `@${issue.digest}`}`;
}

function groups(report: ReconcileReport): [ReconcileIssue["kind"], ReconcileIssue[]][] {
  const byKind = new Map<ReconcileIssue["kind"], ReconcileIssue[]>();
  for (const issue of report.issues) {
    const list = byKind.get(issue.kind) ?? [];
    list.push(issue);
    byKind.set(issue.kind, list);
  }
  return (Object.keys(ISSUE_TITLES) as ReconcileIssue["kind"][])
    .filter((kind) => byKind.has(kind))
    .map((kind) => [kind, byKind.get(kind) ?? []]);
}

function writeReconcileText(io: CliIO, report: ReconcileReport): void {
  for (const [kind, issues] of groups(report)) {
    writeLine(io.stdout, `${ISSUE_TITLES[kind]} (${issues.length}):`);
    for (const issue of issues) {
      writeLine(io.stdout, `  ${issueTarget(issue)}`);
      writeLine(io.stdout, `      ${issue.detail}`);
    }
    writeLine(io.stdout);
  }
  for (const note of report.notes) writeLine(io.stdout, `note: ${note}`);
  writeLine(
    io.stdout,
    report.issues.length === 0
      ? `OK: ${report.repositories} production repositories match the manifests`
      : `${report.issues.length} problems in ${report.repositories} production repositories`,
  );
}

export function reconcileMarkdown(report: ReconcileReport): string {
  const lines = ["# Production registries against the manifests", ""];
  if (report.issues.length === 0) {
    lines.push(`All ${report.repositories} production repositories match the manifests.`, "");
  } else {
    lines.push(`${report.issues.length} problems in ${report.repositories} production repositories.`, "");
  }
  for (const [kind, issues] of groups(report)) {
    lines.push(
      `## ${ISSUE_TITLES[kind]} (${issues.length})`,
      "",
      "| Repository | Tag | Digest | Detail |",
      "| --- | --- | --- | --- |",
    );
    for (const issue of issues) {
      lines.push(
        `| ${markdownText(issue.repository)} | ${issue.tag === undefined ? "" : markdownCode(issue.tag)} | ${issue.digest === undefined ? "" : markdownCode(issue.digest)} | ${markdownText(issue.detail)} |`,
      );
    }
    lines.push("");
  }
  if (report.notes.length > 0) {
    lines.push("## Notes", "");
    for (const note of report.notes) lines.push(`- ${markdownText(note)}`);
    lines.push("");
  }
  return `${lines.join("\n")}\n`;
}
