import { relativeFile, type Finding, type SourcePosition } from "../manifest/index.js";

/** Shared text formatting for command output: paths relative to where the user stands, counts. */

// Documents the library builds name files the same way (manifest/finding.ts).
export { relativeFile };

export function positionText(cwd: string, position: SourcePosition): string {
  return `${relativeFile(cwd, position.file)}:${position.line}:${position.column}`;
}

/** A finding as a compiler would print it: `file:line:col: error[rule]: message`. */
export function findingText(cwd: string, finding: Finding): string {
  return `${positionText(cwd, finding.position)}: ${finding.severity}[${finding.rule}]: ${finding.message}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}

/** A list that stays one line: the first `shown` names, then "and N more". */
export function abbreviatedList(names: readonly string[], shown = 3): string {
  if (names.length <= shown + 1) return names.join(", ");
  return `${names.slice(0, shown).join(", ")} and ${names.length - shown} more`;
}

/** `sha256:0123456789ab…`: enough to recognise a digest in a list; problems print it whole. */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(":");
  return colon < 0 ? digest : `${digest.slice(0, colon + 13)}…`;
}
