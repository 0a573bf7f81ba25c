import * as path from "node:path";
import type { Finding, Severity, SourcePosition } from "./model.js";

/**
 * The catalogue of manifest rules: every finding carries one of these ids, its default severity
 * and a one-sentence hint. docs/manifest-format.md documents each id with an example; keep the
 * two in step (a test checks that every id is documented).
 */
export const MANIFEST_RULES = {
  "yaml-syntax": {
    severity: "error",
    hint: "Fix the YAML at this position; the whole file is ignored until it parses.",
  },
  "yaml-warning": {
    severity: "warning",
    hint: "The YAML parses, but this construct is probably not what was meant.",
  },
  "yaml-limit": {
    severity: "error",
    hint: "Promotion manifests are small, shallow and plain; split the file or remove anchors and aliases.",
  },
  "refused-file": {
    severity: "error",
    hint: "A tree is read only from regular files inside it, so replace the link, folder, FIFO or device with the file itself.",
  },
  "invalid-type": {
    severity: "error",
    hint: "Use the shape the manifest format expects (see docs/manifest-format.md).",
  },
  "unknown-key": {
    severity: "error",
    hint: "Remove the key or fix its spelling; unknown keys are refused so that typos cannot hide.",
  },
  "duplicate-key": {
    severity: "error",
    hint: "Keep one of the entries; neither value is used while the key is duplicated.",
  },
  "missing-field": {
    severity: "error",
    hint: "Add the missing field; the entry is ignored until it has one.",
  },
  "kpromo-spelling": {
    severity: "warning",
    hint: "Write it the canonical way (src: true or false, no trailing / in a registry name, no empty document after ---), which every tool reads alike.",
  },
  "deprecated-key": {
    severity: "warning",
    hint: "Remove the key; the images file is always images/<project>/images.yaml.",
  },
  "empty-dmap": {
    severity: "warning",
    hint: "List at least one digest under dmap, or remove the image entry.",
  },
  "invalid-digest": {
    severity: "error",
    hint: "Write the full digest as sha256: followed by 64 lower-case hex digits (copy it from the staging registry).",
  },
  "invalid-tag": {
    severity: "error",
    hint: "A tag is 1 to 128 characters of letters, digits, _ . and -, and does not start with . or -.",
  },
  "invalid-image-name": {
    severity: "error",
    hint: "Use lower-case path components separated by /, each made of letters and digits joined by . _ __ or dashes.",
  },
  "invalid-registry-name": {
    severity: "error",
    hint: "Write a registry host with an optional path, such as gcr.io/k8s-staging-foo, or oci:DIR for a local OCI layout.",
  },
  "no-source-registry": {
    severity: "error",
    hint: "Mark the staging registry with src: true; without a source nothing is promoted.",
  },
  "multiple-source-registries": {
    severity: "error",
    hint: "Keep src: true on exactly one registry; split the manifest if images come from several places.",
  },
  "destination-is-source": {
    severity: "error",
    hint: "Remove this registry from the destinations; promoting onto the source would write into the staging registry.",
  },
  "duplicate-registry": {
    severity: "warning",
    hint: "Remove the repeated registry entry.",
  },
  "tag-conflict": {
    severity: "error",
    hint: "Keep the tag on one digest only; a destination tag can point at one image.",
  },
  "registry-not-allowed": {
    severity: "error",
    hint: "Name a public registry, or an oci: layout inside the tree; registries on this machine or a private network, and layouts elsewhere, need the operator's --allow-registry.",
  },
  "invalid-registry-policy": {
    severity: "error",
    hint: "List public registries as HOST[:PORT][/PATH] under registries:; the entry allows nothing until it is fixed.",
  },
  "foreign-repository": {
    severity: "error",
    hint: "Remove the entry, or ask the promotion admins to move the image to this project's destination.",
  },
  "disputed-repository": {
    severity: "error",
    hint: "Keep the image in one project's images file; a repository under a shared destination belongs to one project.",
  },
  "missing-images-file": {
    severity: "error",
    hint: "Create images/<project>/images.yaml next to the manifests folder (it may hold only comments).",
  },
  "misplaced-manifest": {
    severity: "error",
    hint: "Move the file to manifests/<project>/promoter-manifest.yaml; other places are not read.",
  },
} as const satisfies Record<string, { severity: Severity; hint: string }>;

export type ManifestRuleId = keyof typeof MANIFEST_RULES;

export interface FindingDetails {
  readonly hint?: string;
  readonly related?: readonly SourcePosition[];
  readonly severity?: Severity;
}

/** A finding for `rule` with its catalogue severity and hint unless `details` says otherwise. */
export function makeFinding(
  rule: ManifestRuleId,
  position: SourcePosition,
  message: string,
  details: FindingDetails = {},
): Finding {
  const entry = MANIFEST_RULES[rule];
  return {
    severity: details.severity ?? entry.severity,
    rule,
    message,
    hint: details.hint ?? entry.hint,
    position,
    ...(details.related && details.related.length > 0 ? { related: details.related } : {}),
  };
}

export function comparePositions(a: SourcePosition, b: SourcePosition): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  return a.line - b.line || a.column - b.column;
}

/** File, line, column, then rule and message: the same input always prints the same way. */
export function compareFindings(a: Finding, b: Finding): number {
  return (
    comparePositions(a.position, b.position) ||
    (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0) ||
    (a.message < b.message ? -1 : a.message > b.message ? 1 : 0)
  );
}

export function sortFindings(findings: readonly Finding[]): Finding[] {
  return [...findings].sort(compareFindings);
}

export function countBySeverity(findings: readonly Finding[]): { errors: number; warnings: number } {
  let errors = 0;
  for (const finding of findings) if (finding.severity === "error") errors += 1;
  return { errors, warnings: findings.length - errors };
}

export function formatPosition(position: SourcePosition): string {
  return `${position.file}:${position.line}:${position.column}`;
}

/** A file named relative to `cwd` (where the user stands), as output and documents name files. */
export function relativeFile(cwd: string, file: string): string {
  if (!path.isAbsolute(file)) return file;
  const relative = path.relative(cwd, file);
  return relative === "" ? file : relative;
}

/** A position whose file is named relative to `cwd`. */
export function relativePosition(cwd: string, position: SourcePosition): SourcePosition {
  return { ...position, file: relativeFile(cwd, position.file) };
}
