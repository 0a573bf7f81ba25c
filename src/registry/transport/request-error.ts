import { isJsonObject } from "../../json-shape.js";
import { truncateForMessage } from "../../errors.js";
import { RegistryError, type RegistryErrorCode } from "../errors.js";
import { MAX_ERROR_BODY_BYTES, MAX_REGISTRY_MESSAGE_CHARS } from "../limits.js";
import { redactUrl, type Redactor } from "../redact.js";
import { readBody } from "./body.js";
import type { HttpRequest, HttpResponse } from "./types.js";

/** `METHOD url` with the URL redacted, for `RegistryErrorDetails.request`. */
export function describeRequest(request: Pick<HttpRequest, "method" | "url">): string {
  return `${request.method} ${redactUrl(request.url)}`;
}

/** A RegistryError about `request`, carrying its context (operation, registry, repository). */
export function requestError(
  code: RegistryErrorCode,
  summary: string,
  request: Pick<HttpRequest, "method" | "url" | "context">,
  extra: {
    status?: number;
    registryCodes?: readonly string[];
    registryMessage?: string;
    cause?: unknown;
    url?: URL;
  } = {},
): RegistryError {
  const { cause, url, ...rest } = extra;
  return new RegistryError(
    code,
    summary,
    {
      ...request.context,
      request: describeRequest({ method: request.method, url: url ?? request.url }),
      ...rest,
    },
    cause === undefined ? undefined : { cause },
  );
}

/** The error codes and messages of a distribution error body, if it is one. */
export interface RegistryErrorBody {
  readonly codes: string[];
  readonly message?: string;
}

/**
 * Parses `{"errors": [{"code", "message", "detail"}]}`.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#error-codes
 */
export function parseErrorBody(bytes: Uint8Array, redactor: Redactor): RegistryErrorBody {
  const text = Buffer.from(bytes).toString("utf8");
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    const plain = text.trim();
    return plain.length > 0 && !plain.startsWith("<")
      ? { codes: [], message: truncateForMessage(redactor.redact(plain), MAX_REGISTRY_MESSAGE_CHARS) }
      : { codes: [] };
  }
  const errors = isJsonObject(document) ? document.errors : undefined;
  if (!Array.isArray(errors)) return { codes: [] };
  const codes: string[] = [];
  const messages: string[] = [];
  for (const entry of errors.slice(0, 20)) {
    if (!isJsonObject(entry)) continue;
    const { code, message } = entry as { code?: unknown; message?: unknown };
    if (typeof code === "string" && /^[A-Z0-9_]{1,64}$/.test(code)) codes.push(code);
    if (typeof message === "string" && message.length > 0) messages.push(message);
  }
  const joined = [...new Set(messages)].join("; ");
  return joined.length > 0
    ? { codes, message: truncateForMessage(redactor.redact(joined), MAX_REGISTRY_MESSAGE_CHARS) }
    : { codes };
}

/** The error code for an unexpected status. */
export function codeForStatus(status: number, registryCodes: readonly string[]): RegistryErrorCode {
  if (status === 401) return "registry-auth";
  if (status === 403) return "registry-denied";
  if (status === 404) return "registry-not-found";
  if (status === 413) return "registry-too-large";
  if (registryCodes.includes("DIGEST_INVALID")) return "registry-digest-mismatch";
  return "registry-http";
}

/**
 * Reads (a capped part of) an error response's body for the registry's error codes and message,
 * and discards the rest. A HEAD response has no body to read.
 */
export async function readErrorBody(
  response: HttpResponse,
  request: Pick<HttpRequest, "method">,
  redactor: Redactor,
): Promise<RegistryErrorBody> {
  let parsed: RegistryErrorBody = { codes: [] };
  if (request.method !== "HEAD") {
    try {
      const bytes = response.bytes ?? (await readBody(response.body, MAX_ERROR_BODY_BYTES, "truncate"));
      parsed = parseErrorBody(bytes, redactor);
    } catch {
      // The status says enough; an unreadable error body is not worth a second error.
    }
  }
  await response.discard();
  return parsed;
}

/** The `requestError` extras that carry a registry's error body. */
export function errorBodyDetails(parsed: RegistryErrorBody): {
  registryCodes: readonly string[];
  registryMessage?: string;
} {
  return {
    registryCodes: parsed.codes,
    ...(parsed.message === undefined ? {} : { registryMessage: parsed.message }),
  };
}

/** Turns an unexpected response into a RegistryError with the registry's codes and message. */
export async function unexpectedResponse(
  response: HttpResponse,
  request: Pick<HttpRequest, "method" | "url" | "context">,
  redactor: Redactor,
  summary = "unexpected response",
): Promise<RegistryError> {
  const parsed = await readErrorBody(response, request, redactor);
  return requestError(codeForStatus(response.status, parsed.codes), summary, request, {
    status: response.status,
    ...errorBodyDetails(parsed),
    url: response.url,
  });
}
