import { logsAt, type Logger, type LogFields, type LogLevel } from "../log.js";
import type { Credential } from "./credentials/types.js";

/**
 * Redaction of credentials in every message and log line the registry client produces: URLs lose
 * their user info and every query value that is not known to be harmless (signed storage URLs
 * carry `X-Amz-Signature`, `sig`, `token`, ...), text loses `Authorization` values, JWTs and
 * every secret the client has seen (passwords, tokens).
 */

export const REDACTED = "REDACTED";

/**
 * Query parameters whose values are shown: the distribution spec's own parameters and the token
 * request's. Everything else (signatures, upload state, tokens) is replaced. An allow-list,
 * because storage backends invent new signing parameters.
 */
const VISIBLE_QUERY_PARAMETERS: ReadonlySet<string> = new Set([
  "n",
  "last",
  "digest",
  "mount",
  "from",
  "service",
  "scope",
  "artifacttype",
]);

/** A URL fit for a message: no user info, no fragment, no values of sensitive query parameters. */
export function redactUrl(url: URL | string): string {
  let parsed: URL;
  try {
    parsed = new URL(String(url));
  } catch {
    return redactPatterns(String(url));
  }
  const query: string[] = [];
  for (const [name, value] of parsed.searchParams) {
    const shown = VISIBLE_QUERY_PARAMETERS.has(name.toLowerCase()) ? value : REDACTED;
    query.push(`${readableComponent(name)}=${readableComponent(shown)}`);
  }
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}${query.length > 0 ? `?${query.join("&")}` : ""}`;
}

/** Percent-encoding that keeps `:`, `/` and `,` readable (scopes, repository names). */
function readableComponent(text: string): string {
  return encodeURIComponent(text).replace(/%3A/gi, ":").replace(/%2F/gi, "/").replace(/%2C/gi, ",");
}

/** Patterns that carry credentials whatever their value: headers, JWTs, signed query strings. */
const PATTERNS: readonly [RegExp, string][] = [
  // Authorization header values and challenges that echo them.
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{4,}/gi, `$1 ${REDACTED}`],
  // JSON Web Tokens (three base64url parts, the first a JSON header).
  [/\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, REDACTED],
  // user:password@ in URLs.
  [/(\/\/)[^/\s:@]+:[^/\s@]+@/g, `$1${REDACTED}@`],
  // Signed URL and token query parameters inside free text. A value already redacted is left
  // alone: output sinks redact text that messages redacted before, and must not eat what follows.
  [
    /([?&](?:x-amz-[a-z-]+|x-goog-[a-z-]+|sig|signature|token|access_token|refresh_token|password|se|sp|sv|skoid|sktid|expires|policy|key-pair-id|_state)=)(?!REDACTED)[^&\s"'<>]+/gi,
    `$1${REDACTED}`,
  ],
  // JSON members that hold credentials (token responses, docker config.json).
  [
    /("(?:token|access_token|refresh_token|password|secret|identitytoken|registrytoken|auth)"\s*:\s*")[^"]*"/gi,
    `$1${REDACTED}"`,
  ],
];

function redactPatterns(text: string): string {
  let result = text;
  for (const [pattern, replacement] of PATTERNS) result = result.replace(pattern, replacement);
  return result;
}

/** Secrets shorter than this are not searched for in text: they would mangle every message. */
const MIN_SECRET_LENGTH = 4;

/** How an output sink writes text (`textValue`, `markdownText`, a JSON string...). */
export type SecretEncoding = (secret: string) => string;

export interface RedactorOptions {
  /**
   * The forms a secret takes once an output sink has encoded it (escaped for markdown, for
   * JSON...): each secret is also looked for in each of these forms, so that redaction can run
   * on encoded output, at the one place where each sink writes.
   */
  readonly encodings?: readonly SecretEncoding[];
}

/**
 * Remembers the secrets one client (or one CLI run) has handled (passwords, identity tokens,
 * bearer tokens, key material) and removes them, and the known credential patterns, from text.
 * One per store provider or per run; never process-wide.
 */
export class Redactor {
  private readonly secrets = new Set<string>();
  private readonly encodings: readonly SecretEncoding[];
  /**
   * `secrets` longest first, so a secret that contains another is removed whole. Sorted again
   * only after a new secret arrives: `redact` runs on every log line and error message.
   */
  private longestFirst: readonly string[] | undefined;

  constructor(options: RedactorOptions = {}) {
    this.encodings = options.encodings ?? [];
  }

  add(secret: string | undefined): void {
    if (secret === undefined || secret.length < MIN_SECRET_LENGTH) return;
    this.remember(secret);
    // The same secret as it appears inside a Basic header or a URL.
    this.remember(Buffer.from(secret).toString("base64"));
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret) this.remember(encoded);
  }

  /** Registers `user:password` pairs the way they travel (base64 in `Authorization: Basic`). */
  addBasic(username: string, password: string): void {
    this.add(password);
    this.remember(Buffer.from(`${username}:${password}`).toString("base64"));
  }

  /** Registers the secret a credential holds (whatever its kind). */
  addCredential(credential: Credential): void {
    if (credential.kind === "basic") this.addBasic(credential.username, credential.password);
    else if (credential.kind === "identity-token") this.add(credential.identityToken);
    else this.add(credential.token);
  }

  private remember(secret: string): void {
    if (this.secrets.has(secret)) return;
    for (const form of [secret, ...this.encodings.map((encode) => encode(secret))]) {
      this.secrets.add(form);
    }
    this.longestFirst = undefined;
  }

  redact(text: string): string {
    this.longestFirst ??= [...this.secrets].sort((a, b) => b.length - a.length);
    let result = text;
    for (const secret of this.longestFirst) result = result.split(secret).join(REDACTED);
    return redactPatterns(result);
  }
}

/** Redacts text with the patterns only (no known secrets). */
export function redactText(text: string): string {
  return redactPatterns(text);
}

function redactValue(value: unknown, redactor: Redactor): unknown {
  if (typeof value === "string") return redactor.redact(value);
  if (value instanceof URL) return redactUrl(value);
  if (value instanceof Error) return redactor.redact(value.message);
  if (Array.isArray(value)) return value.map((entry) => redactValue(entry, redactor));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([key, entry]) => [key, redactValue(entry, redactor)]),
    );
  }
  return value;
}

/** A logger that redacts every message and field before passing it on. */
export function redactingLogger(logger: Logger, redactor: Redactor): Logger {
  return {
    accepts: (level: LogLevel) => logsAt(logger, level),
    log(level: LogLevel, message: string, fields?: LogFields): void {
      const safeFields = fields === undefined ? undefined : (redactValue(fields, redactor) as LogFields);
      logger.log(level, redactor.redact(message), safeFields);
    },
  };
}
