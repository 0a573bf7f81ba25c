import { quoteExcerpt } from "./excerpt.js";

/**
 * The one error base of the project. Every error the library raises on purpose is a
 * `PromoterError` with a stable, machine-readable `code`; callers branch on `code`, people read
 * `message`. Messages never contain secrets: anything that may carry a credential goes through
 * `registry/redact` before it reaches an error.
 */
export class PromoterError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Bad input from the person running the tool (flags, missing files): exit status 2. */
export class UsageError extends PromoterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("usage", message, options);
  }
}

/**
 * Work refused on purpose because its input is unsafe to act on (a git repository hidden in the
 * manifest tree, say): not a usage mistake and not a failure of the tool. Exit status 1, one
 * line `refused: ...`.
 */
export class RefusedError extends PromoterError {}

/** A string that does not follow one of the name grammars (digest, tag, repository, reference). */
export class InvalidNameError extends PromoterError {
  readonly kind: "digest" | "tag" | "repository" | "registry" | "reference";
  readonly input: string;

  constructor(kind: InvalidNameError["kind"], input: string, reason: string) {
    super(`invalid-${kind}`, `invalid ${kind} ${quoteExcerpt(input)}: ${reason}`);
    this.kind = kind;
    this.input = input;
  }
}

/** Signals that work was stopped on purpose (Ctrl-C, SIGTERM, a deadline). */
export class AbortedError extends PromoterError {
  constructor(message = "operation aborted", options?: { cause?: unknown }) {
    super("aborted", message, options);
  }
}

export function isPromoterError(error: unknown): error is PromoterError {
  return error instanceof PromoterError;
}

/** Long inputs would flood a terminal; keep the start, which is what a person recognises. */
export function truncateForMessage(text: string, max = 200): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

/** A message for any thrown value, without assuming it is an Error. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** The `code` of a Node.js system error (`ENOENT`, ...), or undefined. */
export function errnoCode(error: unknown): string | undefined {
  return error instanceof Error && "code" in error && typeof error.code === "string" ? error.code : undefined;
}

const ERRNO_DESCRIPTIONS: Readonly<Record<string, string>> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EISDIR: "is a directory",
  ENOTDIR: "a part of the path is not a directory",
  ELOOP: "too many levels of symbolic links",
};

/** A file-system error in words ("no such file or directory"), for a message that names the path itself. */
export function describeErrno(error: unknown): string {
  const code = errnoCode(error);
  const known = code === undefined ? undefined : ERRNO_DESCRIPTIONS[code];
  return known ?? describeError(error);
}
