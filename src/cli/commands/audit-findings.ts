import * as path from "node:path";
import { existsSync } from "node:fs";
import {
  DEFAULT_AUDIT_DB,
  DEFAULT_FINDINGS_LIMIT,
  findingJson,
  FindingStore,
  MAX_FINDINGS_LIMIT,
  normaliseTime,
  type AuditFinding,
  type FindingFilter,
} from "../../audit/index.js";
import { UsageError } from "../../errors.js";
import { jsonText } from "../../output/encode.js";
import { integerOption, stringOption, type Command } from "../command.js";
import { ExitCode, writeLine, type CliIO } from "../io.js";

const OUTPUT_FORMATS = ["text", "json"] as const;
const VERDICTS = ["verified", "violation"] as const;

/** `promoter audit findings`: what `audit serve` recorded, newest first. */
export const auditFindingsCommand: Command = {
  words: ["audit", "findings"],
  summary: "Print the findings recorded by audit serve",
  usage:
    "audit findings --db FILE [--verdict verified|violation] [--repository R] [--since TIME] [--limit N] [--output text|json]",
  description: `
Reads the findings database of 'promoter audit serve' (read-only; the server may be running) and
prints findings newest first. --repository takes HOST/PATH, or a prefix ending in "/".
The JSON form is {"findings": [...]} as GET /findings returns it. Reading the database needs
better-sqlite3, an optional dependency of image-promoter.

Exit status: 0 when no violation is printed, 1 when at least one is, 2 on bad input.`,
  options: {
    db: {
      type: "string",
      valueName: "FILE",
      description: `Findings database (default ./${DEFAULT_AUDIT_DB})`,
    },
    verdict: {
      type: "string",
      valueName: "VERDICT",
      description: "Only verified or only violation findings",
    },
    repository: {
      type: "string",
      valueName: "R",
      description: "Only this repository (HOST/PATH, or a prefix ending in /)",
    },
    since: {
      type: "string",
      valueName: "TIME",
      description: "Only findings received at or after this ISO 8601 time",
    },
    limit: {
      type: "string",
      valueName: "N",
      description: `At most N findings (default ${DEFAULT_FINDINGS_LIMIT})`,
    },
    output: { type: "string", valueName: "FORMAT", description: "text (default) or json" },
  },
  run({ io, values }) {
    const dbPath = path.resolve(io.cwd, stringOption(values, "db") ?? DEFAULT_AUDIT_DB);
    const output = stringOption(values, "output", OUTPUT_FORMATS) ?? "text";
    const filter: { -readonly [K in keyof FindingFilter]: FindingFilter[K] } = {};
    const verdict = stringOption(values, "verdict", VERDICTS);
    if (verdict !== undefined) filter.verdict = verdict;
    const repository = stringOption(values, "repository");
    if (repository !== undefined) filter.repository = repository;
    const since = stringOption(values, "since");
    if (since !== undefined) {
      const normalised = normaliseTime(since);
      if (normalised === undefined)
        throw new UsageError(`--since must be an ISO 8601 time, not ${JSON.stringify(since)}`);
      filter.since = normalised;
    }
    const limit = integerOption(values, "limit", 1, MAX_FINDINGS_LIMIT);
    if (limit !== undefined) filter.limit = limit;
    if (!existsSync(dbPath)) throw new UsageError(`no findings database at ${dbPath} (see --db)`);
    const store = FindingStore.openReadOnly(dbPath);
    let findings: AuditFinding[];
    try {
      findings = store.query(filter);
    } finally {
      store.close();
    }
    if (output === "json") io.stdout.write(`${jsonText({ findings: findings.map(findingJson) }, 2)}\n`);
    else writeFindingsText(io, findings);
    return Promise.resolve(
      findings.some((finding) => finding.verdict === "violation") ? ExitCode.failed : ExitCode.ok,
    );
  },
};

function writeFindingsText(io: CliIO, findings: readonly AuditFinding[]): void {
  if (findings.length === 0) {
    writeLine(io.stdout, "no findings");
    return;
  }
  for (const finding of findings) {
    const target = `${finding.repository}${finding.tag === null ? "" : `:${finding.tag}`}${finding.digest === null ? "" : `@${finding.digest}`}`;
    writeLine(
      io.stdout,
      `${finding.receivedAt} ${finding.verdict.toUpperCase()} ${finding.action} ${target}`,
    );
    writeLine(io.stdout, `    ${finding.rule}: ${finding.reason}`);
    if (finding.retracted) {
      writeLine(
        io.stdout,
        `    retracted at ${finding.retracted.at}, was a violation (${finding.retracted.rule}): ${finding.retracted.reason}`,
      );
    }
  }
  const violations = findings.filter((finding) => finding.verdict === "violation").length;
  writeLine(io.stdout, `${findings.length} findings, ${violations} violations`);
}
