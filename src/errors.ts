import { quoteExcerpt } from "./excerpt.js";

/**
 * Every `code` a `PromoterError` can carry, grouped by the layer that raises it and documented in
 * docs/errors.md (src/errors.test.ts keeps the two equal). A code in no union is a compile error
 * wherever an error is made. Codes are stable: callers branch on them, people read messages.
 */
export type GeneralErrorCode =
  | "usage" // bad flags or input from the person running the tool: exit status 2
  | "aborted" // stopped on purpose (Ctrl-C, SIGTERM, a deadline)
  | "internal" // a self-check of the tool failed: a bug
  | "invalid-digest"
  | "invalid-tag"
  | "invalid-repository"
  | "invalid-registry"
  | "invalid-reference"
  | "invalid-content"; // an OCI manifest or index that does not follow the image spec

/** Reading promotion manifests, saved plans and shards. */
export type ManifestErrorCode =
  | "manifest-io" // a manifest file or directory cannot be read
  | "no-manifests" // a thin-manifest tree without manifests
  | "tree-file-refused" // a file of the manifest tree that leads outside it, or is not a regular file
  | "invalid-plan-file" // a saved plan (--from-plan) that is not one
  | "invalid-shard"; // --shard I/N that does not parse

/** Work refused because its input is unsafe to act on (`RefusedError`): exit status 1. */
export type RefusedErrorCode =
  | "manifest-tree-refused" // a git repository hidden in the manifest tree
  | "pr-refused"; // promoter pr: the fork, branch or file is not one the change may be made on

/** A registry or OCI layout directory failed (`RegistryError`). */
export type RegistryErrorCode =
  | "registry-http" // an unexpected HTTP status
  | "registry-network" // connection refused, reset, DNS, TLS
  | "registry-timeout"
  | "registry-unreachable" // the host failed for good earlier in the run (refused, DNS, TLS, silent): not sent
  | "registry-https-required" // a plain-HTTP request answered by a TLS server
  | "registry-quota" // the host's quota is spent for longer than the run may wait
  | "registry-auth" // no or wrong credentials, token endpoint refused
  | "registry-denied" // authenticated but not allowed
  | "registry-not-found"
  | "registry-digest-mismatch" // bytes do not hash to the digest asked for or announced
  | "registry-too-large" // a response above its size cap
  | "registry-protocol" // a response that breaks the spec (bad Location, bad JSON)
  | "registry-insecure" // a request that would weaken transport security (https -> http, foreign realm)
  | "layout-invalid"; // an OCI layout directory that is malformed or tries to escape

/** One node of an image graph could not be copied (`CopyError`). */
export type CopyErrorCode =
  | "copy-source-missing" // the source does not have a manifest or blob the graph needs
  | "copy-source-failed" // reading from the source failed
  | "copy-destination-failed"; // writing to or checking the destination failed

/** Signing and verifying (`SignError`). */
export type SignErrorCode =
  | "sign-key" // a signing or verification key cannot be used
  | "sign-failed" // making a signature failed (the key, Fulcio, Rekor, an identity token)
  | "sign-policy" // a signature policy (file or flags) is invalid
  | "sign-format"; // a signature manifest, payload or bundle does not follow its layout

/** The GitOps commands (snapshot, manifest add, check) and the git runner. */
export type GitOpsErrorCode =
  | "git" // a git command failed
  | "no-catalog" // snapshot: the registry does not list its repositories
  | "snapshot-not-found" // snapshot: the named path, repository or tag is not there
  | "images-file-edit" // manifest add: the images file cannot be edited in place
  | "manifest-add-refused" // manifest add: the addition is not allowed (a moved tag, say)
  | "image-facts" // check: an image's facts cannot be read
  | "invalid-vuln-report"; // check: the vulnerability report does not parse

/** The GitHub REST API client of `promoter pr` (`GitHubError`). */
export type GitHubErrorCode =
  | "github-http" // an unexpected HTTP status
  | "github-auth" // no token, or GitHub refused it (401)
  | "github-rate-limited" // the rate limit resets later than the client waits
  | "github-protocol"; // an answer that is not what the API documents (a redirect to another origin, bad JSON)

/** The auditor. */
export type AuditErrorCode =
  | "audit-store" // the findings database cannot be opened or used
  | "audit-reader-busy" // GET /findings: the reader is busy; retry later
  | "audit-git" // cloning or fetching the manifests' repository failed
  | "audit-manifest-reload" // reloading the manifests failed (the last good state is kept)
  | "audit-malformed-event"; // a notification that does not parse

export type ErrorCode =
  | GeneralErrorCode
  | ManifestErrorCode
  | RefusedErrorCode
  | RegistryErrorCode
  | "registry-ca" // the registry client's CA bundle cannot be used
  | CopyErrorCode
  | "copy-upload-not-started" // internal to the copy engine: a shared upload gets its own read
  | SignErrorCode
  | GitOpsErrorCode
  | GitHubErrorCode
  | AuditErrorCode;

/**
 * Codes that are never thrown but describe a problem in a report (an edge's or an attachment's
 * `error.code`, docs/promotion.md), next to the codes of the errors that caused one.
 */
export type ReportOnlyCode =
  | "tag-conflict" // two manifests claim the tag for different digests
  | "source-signature" // the staging digest has no valid signature (--require-source-signature)
  | "not-observed" // the repository was not read
  | "not-run" // the copy for this edge did not run
  | "tag-not-written" // the copy engine did not write this tag
  | "attachment-unreadable" // a destination's attachment could not be read
  | "attachment-conflict" // a destination's attachment tag holds other content
  | "signature-failed" // the image is in place but its signature could not be written
  | "attachment-failed"; // the image is in place but a carried attachment could not be written

/** A code in a report: an error's code, or a report-only code. */
export type ProblemCode = ErrorCode | ReportOnlyCode;

// Each code once, as a key: `satisfies` makes a missing or unknown code a compile error.
const ERROR_CODE_KEYS = {
  usage: 0,
  aborted: 0,
  internal: 0,
  "invalid-digest": 0,
  "invalid-tag": 0,
  "invalid-repository": 0,
  "invalid-registry": 0,
  "invalid-reference": 0,
  "invalid-content": 0,
  "manifest-io": 0,
  "no-manifests": 0,
  "tree-file-refused": 0,
  "invalid-plan-file": 0,
  "invalid-shard": 0,
  "manifest-tree-refused": 0,
  "pr-refused": 0,
  "registry-http": 0,
  "registry-network": 0,
  "registry-timeout": 0,
  "registry-unreachable": 0,
  "registry-https-required": 0,
  "registry-quota": 0,
  "registry-auth": 0,
  "registry-denied": 0,
  "registry-not-found": 0,
  "registry-digest-mismatch": 0,
  "registry-too-large": 0,
  "registry-protocol": 0,
  "registry-insecure": 0,
  "layout-invalid": 0,
  "registry-ca": 0,
  "copy-source-missing": 0,
  "copy-source-failed": 0,
  "copy-destination-failed": 0,
  "copy-upload-not-started": 0,
  "sign-key": 0,
  "sign-failed": 0,
  "sign-policy": 0,
  "sign-format": 0,
  git: 0,
  "no-catalog": 0,
  "snapshot-not-found": 0,
  "images-file-edit": 0,
  "manifest-add-refused": 0,
  "image-facts": 0,
  "invalid-vuln-report": 0,
  "github-http": 0,
  "github-auth": 0,
  "github-rate-limited": 0,
  "github-protocol": 0,
  "audit-store": 0,
  "audit-reader-busy": 0,
  "audit-git": 0,
  "audit-manifest-reload": 0,
  "audit-malformed-event": 0,
} as const satisfies Record<ErrorCode, 0>;

const REPORT_ONLY_CODE_KEYS = {
  "tag-conflict": 0,
  "source-signature": 0,
  "not-observed": 0,
  "not-run": 0,
  "tag-not-written": 0,
  "attachment-unreadable": 0,
  "attachment-conflict": 0,
  "signature-failed": 0,
  "attachment-failed": 0,
} as const satisfies Record<ReportOnlyCode, 0>;

/** Every error code, for callers that enumerate them. */
export const ERROR_CODES: readonly ErrorCode[] = Object.keys(ERROR_CODE_KEYS) as ErrorCode[];

/** Every code a report can carry: the error codes and the report-only codes. */
export const PROBLEM_CODES: readonly ProblemCode[] = [
  ...ERROR_CODES,
  ...(Object.keys(REPORT_ONLY_CODE_KEYS) as ReportOnlyCode[]),
];

/** A problem as reports carry it: the code and the message, never a stack. */
export interface Problem {
  readonly code: ProblemCode;
  readonly message: string;
}

/**
 * The one error base of the project. Every error the library raises on purpose is a
 * `PromoterError` with a stable, machine-readable `code`; callers branch on `code`, people read
 * `message`. Messages never contain secrets: anything that may carry a credential goes through
 * `registry/redact` before it reaches an error.
 */
export class PromoterError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
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
export class RefusedError extends PromoterError {
  declare readonly code: RefusedErrorCode;

  // Not useless: it narrows the codes a RefusedError accepts (a class is not generic in its `code`, so
  // that `instanceof` narrows `code` to its union rather than to any).
  // eslint-disable-next-line @typescript-eslint/no-useless-constructor
  constructor(code: RefusedErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

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
