import { plural } from "../../output/quantities.js";
import {
  outcomesByTarget,
  type AttachmentOutcome,
  type AttachmentPlan,
  type AttachmentWork,
  type WorkItem,
} from "../../sign/index.js";
import { PROMOTION_PREDICATE_TYPE, VSA_PREDICATE_TYPE } from "../../provenance/index.js";
import { markdownCode, markdownText, textLines } from "../../output/encode.js";
import { abbreviatedList, shortDigest } from "../format.js";

/**
 * The signature and attachment part of a plan or result, for people (text, markdown; the
 * `signatures` section of the JSON plan and report is sign/signatures-document.ts). Lines are
 * collapsed like the image plan: one per action and set of destinations, with the number of
 * manifests (an index and its images) it concerns. Text lines go through `textLines`, markdown
 * values through `markdownCode` and `markdownText`: registry messages stay inert.
 */

interface Line {
  readonly problem: boolean;
  readonly text: string;
  readonly destinations: readonly string[];
  readonly count: number;
}

function itemLabel(item: WorkItem): string {
  switch (item.kind) {
    case "sig":
      return item.action === "sign" ? "sign" : "copy signature (.sig)";
    case "att":
      return item.action === "sign" ? "attest (.att)" : "copy attestations (.att)";
    case "sbom":
      return "copy SBOM (.sbom)";
    case "referrer":
      return `copy referrer${item.detail ? ` ${item.detail}` : ""}`;
    case "bundle":
      return item.action === "sign" ? "sign (bundle)" : "copy signature bundle";
    case "attestation":
      return `${item.action === "sign" ? "attest" : "copy attestation"} ${attestationName(item.detail)}`;
  }
}

/** Our attestations by what they are, not by their long predicate type URI. */
function attestationName(predicateType: string | undefined): string {
  if (predicateType === PROMOTION_PREDICATE_TYPE) return "promotion record";
  if (predicateType === VSA_PREDICATE_TYPE) return "VSA";
  return predicateType ?? "";
}

function destinationName(work: AttachmentWork, key: string): string {
  return work.target.destinations.find((destination) => destination.key === key)?.registry ?? key;
}

/** Lines of one promoted digest, planned (dry run). */
function plannedLines(work: AttachmentWork): Line[] {
  const lines = new Map<string, { problem: boolean; text: string; destinations: string[]; count: number }>();
  const add = (problem: boolean, text: string, destinations: string[]) => {
    const sorted = [...new Set(destinations)].sort();
    const key = `${problem ? "x" : "-"}|${text}|${sorted.join(",")}`;
    const line = lines.get(key);
    if (line) line.count += 1;
    else lines.set(key, { problem, text, destinations: sorted, count: 1 });
  };
  if (work.problem) add(true, `cannot plan signatures: ${work.problem.message}`, []);
  for (const { items } of work.subjects) {
    for (const item of items) {
      if (item.writeTo.length > 0) {
        add(
          false,
          itemLabel(item),
          item.writeTo.map((key) => destinationName(work, key)),
        );
      }
      for (const entry of item.unreadable) {
        add(true, `cannot read ${item.tag ?? item.kind}: ${entry.message}`, [
          destinationName(work, entry.key),
        ]);
      }
      for (const entry of item.conflicts) {
        add(
          true,
          `${item.tag ?? item.kind} holds another document (${shortDigest(entry.current)}); left alone`,
          [destinationName(work, entry.key)],
        );
      }
    }
  }
  return [...lines.values()];
}

/** Lines of one promoted digest after the run. */
function resultLines(work: AttachmentWork, outcomes: readonly AttachmentOutcome[]): Line[] {
  const lines = new Map<string, { problem: boolean; text: string; destinations: string[]; count: number }>();
  const subjects = new Map<string, Set<string>>();
  for (const outcome of outcomes) {
    const failed = outcome.status === "failed" || outcome.status === "conflict";
    const what = outcome.kind === "subjects" ? "signatures" : (outcome.tag ?? outcome.kind);
    const text = failed
      ? `${outcome.status === "conflict" ? "conflict" : "failed"}: ${what}: ${outcome.error?.message ?? ""}`
      : `${outcome.status} ${outcomeName(outcome)}`;
    const key = `${failed ? "x" : "-"}|${text}`;
    const line = lines.get(key) ?? { problem: failed, text, destinations: [], count: 0 };
    const name = destinationName(work, outcome.destination);
    if (!line.destinations.includes(name)) line.destinations.push(name);
    const seen = subjects.get(key) ?? new Set<string>();
    if (!seen.has(outcome.subject)) {
      seen.add(outcome.subject);
      line.count += 1;
    }
    subjects.set(key, seen);
    lines.set(key, line);
  }
  return [...lines.values()].map((line) => ({ ...line, destinations: line.destinations.sort() }));
}

function outcomeName(outcome: AttachmentOutcome): string {
  if (outcome.kind === "sig" || outcome.kind === "bundle") return "signature";
  if (outcome.kind === "attestation") return "attestation";
  return outcome.kind;
}

function lineText(line: Line): string {
  const count = line.count > 1 ? ` (${line.count} manifests)` : "";
  const where =
    line.destinations.length > 0
      ? ` -> ${plural(line.destinations.length, "destination")}: ${abbreviatedList(line.destinations)}`
      : "";
  return `${line.problem ? "x " : ""}${line.text}${count}${where}`;
}

function heading(plan: AttachmentPlan): string {
  const parts: string[] = [];
  if (plan.signer) parts.push(`signing with ${plan.signer}, ${plan.format} layout`);
  if (plan.attestations) parts.push(`attestations: ${plan.attestations}`);
  if (plan.mode !== "none") parts.push(`staging attachments: ${plan.mode}`);
  return parts.length === 0
    ? "Signatures and attachments"
    : `Signatures and attachments (${parts.join("; ")})`;
}

export interface SignatureTextOptions {
  /** After a run: what was done (only problems when `onlyProblems`). */
  readonly outcomes?: readonly AttachmentOutcome[];
  readonly onlyProblems?: boolean;
}

export function signaturesText(plan: AttachmentPlan, options: SignatureTextOptions = {}): string {
  const out: string[] = [heading(plan), ""];
  let quiet = 0;
  const byTarget = outcomesByTarget(options.outcomes ?? []);
  for (const work of plan.works) {
    let lines = options.outcomes ? resultLines(work, byTarget.get(work.target) ?? []) : plannedLines(work);
    if (options.onlyProblems) lines = lines.filter((line) => line.problem);
    if (lines.length === 0) {
      quiet += 1;
      continue;
    }
    const { target } = work;
    const identities = plan.signer ? `  as ${target.identities.join(", ")}` : "";
    out.push(`${target.image}@${shortDigest(target.digest)}${identities}`);
    for (const line of lines.sort((a, b) => Number(b.problem) - Number(a.problem)))
      out.push(`  ${lineText(line)}`);
    if (!options.onlyProblems) for (const note of work.notes) out.push(`  note: ${note}`);
    out.push("");
  }
  // Without signing, a run that carries nothing says nothing about attachments.
  if (quiet === plan.works.length && (options.onlyProblems || !plan.signer)) return "";
  if (quiet > 0 && !options.onlyProblems) {
    out.push(
      `${plural(quiet, "promoted digest")} with ${plan.signer ? "signatures and attachments" : "attachments"} already in place everywhere, not listed.`,
      "",
    );
  }
  return textLines(out);
}

export function signaturesMarkdown(plan: AttachmentPlan, outcomes?: readonly AttachmentOutcome[]): string {
  const out: string[] = [`#### ${markdownText(heading(plan))}`, ""];
  const rows: string[] = [];
  let quiet = 0;
  const byTarget = outcomesByTarget(outcomes ?? []);
  for (const work of plan.works) {
    const lines = outcomes ? resultLines(work, byTarget.get(work.target) ?? []) : plannedLines(work);
    if (lines.length === 0) {
      quiet += 1;
      continue;
    }
    for (const line of lines) {
      const count = line.count > 1 ? ` (${line.count} manifests)` : "";
      rows.push(
        `| ${markdownCode(work.target.image)} | ${markdownCode(shortDigest(work.target.digest))} | ${line.problem ? ":x: " : ""}${markdownText(line.text)}${count} | ${line.destinations.length}: ${markdownText(abbreviatedList(line.destinations))} |`,
      );
    }
  }
  if (rows.length === 0 && !plan.signer) return "";
  if (rows.length > 0)
    out.push("| image | digest | action | destinations |", "|---|---|---|---|", ...rows, "");
  if (quiet > 0)
    out.push(`${plural(quiet, "promoted digest")} already signed and attached everywhere, not listed.`, "");
  return out.join("\n");
}
