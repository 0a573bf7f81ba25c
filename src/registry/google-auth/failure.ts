import { isJsonObject } from "../../json-shape.js";
import { describeError } from "../../errors.js";

/**
 * A problem getting Google credentials or tokens. Consumers turn it into their own error (a
 * `registry-auth` / `registry-denied` RegistryError, a `sign-failed` SignError); `status` is the
 * HTTP status Google answered with, when it answered.
 */
export class GoogleAuthError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "GoogleAuthError";
  }
}

const MAX_DETAIL_CHARS = 300;

function clip(text: string): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > MAX_DETAIL_CHARS ? `${line.slice(0, MAX_DETAIL_CHARS)}…` : line;
}

/**
 * What Google's answer says, from its JSON error body: the status, the message and, from an
 * `ErrorInfo` detail, the missing permission. Google APIs answer
 * `{"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "...", "details": [{"@type":
 * "type.googleapis.com/google.rpc.ErrorInfo", "metadata": {"permission": "..."}}]}}`; OAuth
 * endpoints answer `{"error": "invalid_grant", "error_description": "..."}`.
 * https://cloud.google.com/apis/design/errors#error_model
 */
export function describeGoogleAnswer(body: unknown): { text?: string; permission?: string } {
  let document: unknown = body;
  if (typeof body === "string") {
    try {
      document = JSON.parse(body);
    } catch {
      return body.trim() === "" ? {} : { text: clip(body) };
    }
  }
  if (!isJsonObject(document)) return {};
  const error = document.error;
  if (typeof error === "string") {
    const description = document.error_description;
    return { text: clip(typeof description === "string" ? `${error}: ${description}` : error) };
  }
  if (!isJsonObject(error)) return {};
  const status = typeof error.status === "string" ? error.status : undefined;
  const message = typeof error.message === "string" ? error.message : undefined;
  let permission: string | undefined;
  if (Array.isArray(error.details)) {
    for (const detail of error.details) {
      if (!isJsonObject(detail) || !isJsonObject(detail.metadata)) continue;
      const named = detail.metadata.permission;
      if (typeof named === "string" && named.length > 0) permission = named;
    }
  }
  // Google's IAM messages name the permission in quotes when no ErrorInfo detail does.
  permission ??= message === undefined ? undefined : /Permission '([\w.]+)' denied/.exec(message)?.[1];
  const text = [status, message].filter((part) => part !== undefined).join(": ");
  return {
    ...(text === "" ? {} : { text: clip(text) }),
    ...(permission === undefined ? {} : { permission }),
  };
}

/**
 * A GoogleAuthError for a failure of the library: `could not <action> [as <principal>]`, the
 * HTTP status and Google's own words, and the missing permission when Google names one. The
 * library's message is used only when Google did not answer (it may quote request options).
 */
export function googleFailure(
  error: unknown,
  action: string,
  principal: string | undefined,
  where?: string,
): GoogleAuthError {
  if (error instanceof GoogleAuthError) return error;
  const response = (error as { response?: { status?: unknown; data?: unknown } }).response;
  const status = typeof response?.status === "number" ? response.status : undefined;
  const who = principal === undefined ? "" : ` as ${principal}`;
  const from = where === undefined ? "" : ` (${where})`;
  if (status === undefined) {
    return new GoogleAuthError(`could not ${action}${who}${from}: ${clip(describeError(error))}`);
  }
  const answer = describeGoogleAnswer(response?.data);
  const missing = answer.permission === undefined ? "" : `; missing permission ${answer.permission}`;
  return new GoogleAuthError(
    `could not ${action}${who}${from}: Google answered HTTP ${status}${answer.text === undefined ? "" : ` (${answer.text})`}${missing}`,
    status,
  );
}
