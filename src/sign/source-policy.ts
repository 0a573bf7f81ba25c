import { isJsonObject } from "../json-shape.js";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { runBounded } from "../concurrency/index.js";
import { describeError } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import type { Digest, RepositoryLocation } from "../reference/index.js";
import { openOnSide, type RepositoryOpener } from "../registry/index.js";
import { checkSignatures } from "./check-signatures.js";
import { SignError } from "./errors.js";
import { loadVerificationKey, type VerificationKey } from "./keys.js";
import {
  checkKeylessIdentity,
  createKeylessPolicy,
  loadTrustedRoot,
  type KeylessIdentity,
  type KeylessPolicy,
} from "./keyless-policy.js";

/**
 * Source signature policy: before an image is promoted, its staging digest must carry a valid
 * signature by one of the trusted keys or keyless identities. The policy has a default rule and
 * rules per source registry (as the manifest names it) or project; the first matching rule
 * applies, then the default; an edge no rule covers is not checked. The CLI's
 * `--source-public-key` keys form the default rule.
 */

export interface SourceRule {
  /** Source registry name as written in manifests (`gcr.io/k8s-staging-foo`); any when absent. */
  readonly registry?: string;
  /** Project (thin-manifest directory, or plain manifest file name); any when absent. */
  readonly project?: string;
  readonly keys: readonly VerificationKey[];
  readonly keyless?: KeylessPolicy;
}

export interface SourcePolicy {
  readonly rules: readonly SourceRule[];
  readonly default?: SourceRule;
}

/** A policy file larger than this is refused. */
export const MAX_POLICY_FILE_BYTES = 1024 * 1024;

export function ruleFor(
  policy: SourcePolicy,
  sourceRegistry: string,
  project: string,
): SourceRule | undefined {
  const matching = policy.rules.find(
    (rule) =>
      (rule.registry === undefined || rule.registry === sourceRegistry) &&
      (rule.project === undefined || rule.project === project),
  );
  return matching ?? policy.default;
}

export interface SourceCheckRequest {
  readonly location: RepositoryLocation;
  /** `sourceVerdictKey(sourceKey, digest)`. */
  readonly key: string;
  readonly digest: Digest;
  readonly rule: SourceRule;
}

/**
 * Checks each source digest against its rule; returns the refusals (verdict key -> reason).
 * A source that cannot be read is refused too (the signature cannot be shown).
 */
export async function checkSourceSignatures(
  requests: readonly SourceCheckRequest[],
  options: {
    readonly provider: RepositoryOpener;
    readonly signal?: AbortSignal;
    readonly logger?: Logger;
    readonly concurrency?: number;
  },
): Promise<Map<string, string>> {
  const logger = options.logger ?? silentLogger;
  const refusals = new Map<string, string>();
  const call = options.signal ? { signal: options.signal } : {};
  // The signal is checked here, not by runBounded, so an abort rejects with the signal's reason.
  await runBounded(requests, options.concurrency ?? 8, async (request) => {
    options.signal?.throwIfAborted();
    const store = openOnSide(options.provider, request.location, "source");
    try {
      const check = await checkSignatures(
        store,
        request.digest,
        { keys: request.rule.keys, ...(request.rule.keyless ? { keyless: request.rule.keyless } : {}) },
        call,
      );
      if (check.status !== "valid") refusals.set(request.key, check.reasons.join("; "));
    } catch (error) {
      if (options.signal?.aborted) throw error;
      refusals.set(request.key, `the source signature could not be read: ${describeError(error)}`);
    }
  });
  logger.log(refusals.size > 0 ? "warn" : "info", "source signatures checked", {
    digests: requests.length,
    refused: refusals.size,
  });
  return refusals;
}

interface RuleDocument {
  registry?: unknown;
  project?: unknown;
  keys?: unknown;
  keyless?: unknown;
}

function stringList(value: unknown, where: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((entry) => typeof entry !== "string")) {
    throw new SignError("sign-policy", `${where} must be a list of strings`);
  }
  return value as string[];
}

const KEYLESS_FIELDS: readonly string[] = ["subject", "subjectRegExp", "issuer", "issuerRegExp"];

function keylessList(value: unknown, where: string): KeylessIdentity[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new SignError("sign-policy", `${where} must be a list`);
  return value.map((entry, i) => {
    const at = `${where}[${i}]`;
    if (!isJsonObject(entry)) throw new SignError("sign-policy", `${at} must be a mapping`);
    const record = entry;
    const identity: Record<string, string> = {};
    for (const field of KEYLESS_FIELDS) {
      const fieldValue = record[field];
      if (fieldValue === undefined) continue;
      if (typeof fieldValue !== "string")
        throw new SignError("sign-policy", `${at}.${field} must be a string`);
      identity[field] = fieldValue;
    }
    const unknown = Object.keys(record).filter((field) => !KEYLESS_FIELDS.includes(field));
    if (unknown.length > 0) throw new SignError("sign-policy", `${at}: unknown field ${unknown.join(", ")}`);
    checkKeylessIdentity(identity, at);
    return identity;
  });
}

/**
 * Reads a policy file (YAML or JSON):
 *
 * ```yaml
 * trustedRoot: trusted_root.json      # needed for keyless identities; relative to this file
 * default:
 *   keys: [release.pub]
 * rules:
 *   - registry: gcr.io/k8s-staging-foo  # and/or project: foo
 *     keys: [foo.pub]
 *     keyless:
 *       - subjectRegExp: https://github\.com/foo/.+
 *         issuer: https://token.actions.githubusercontent.com
 * ```
 */
export async function loadSourcePolicy(
  file: string,
  options: { readonly cwd?: string; readonly env?: Readonly<Record<string, string | undefined>> } = {},
): Promise<SourcePolicy> {
  const resolved = path.resolve(options.cwd ?? process.cwd(), file);
  let text: string;
  try {
    text = await readFile(resolved, "utf8");
  } catch (error) {
    throw new SignError("sign-policy", `cannot read the policy file ${file}: ${describeError(error)}`);
  }
  if (text.length > MAX_POLICY_FILE_BYTES) {
    throw new SignError("sign-policy", `${file} is larger than ${MAX_POLICY_FILE_BYTES} bytes`);
  }
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new SignError("sign-policy", `${file}: not valid YAML (${describeError(error)})`);
  }
  if (!isJsonObject(document)) throw new SignError("sign-policy", `${file}: not a mapping`);
  const record = document as { trustedRoot?: unknown; default?: unknown; rules?: unknown };
  const base = path.dirname(resolved);
  const keyOptions = { cwd: base, ...(options.env ? { env: options.env } : {}) };
  let keyless: ((identities: KeylessIdentity[]) => KeylessPolicy) | undefined;
  if (record.trustedRoot !== undefined) {
    if (typeof record.trustedRoot !== "string")
      throw new SignError("sign-policy", `${file}: trustedRoot must be a file name`);
    const trustedRoot = record.trustedRoot;
    const trust = await loadTrustedRoot(
      trustedRoot,
      base,
      (reason) => new SignError("sign-policy", `${file}: cannot read trustedRoot ${trustedRoot}: ${reason}`),
    );
    keyless = (identities) => createKeylessPolicy(identities, trust);
  }
  const rule = async (value: unknown, where: string): Promise<SourceRule> => {
    if (!isJsonObject(value)) throw new SignError("sign-policy", `${where} must be a mapping`);
    const entry = value as RuleDocument;
    const unknown = Object.keys(entry).filter(
      (field) => !["registry", "project", "keys", "keyless"].includes(field),
    );
    if (unknown.length > 0)
      throw new SignError("sign-policy", `${where}: unknown field ${unknown.join(", ")}`);
    for (const field of ["registry", "project"] as const) {
      if (entry[field] !== undefined && typeof entry[field] !== "string") {
        throw new SignError("sign-policy", `${where}.${field} must be a string`);
      }
    }
    const keys = await Promise.all(
      stringList(entry.keys, `${where}.keys`).map((name) => loadVerificationKey(name, keyOptions)),
    );
    const identities = keylessList(entry.keyless, `${where}.keyless`);
    if (identities.length > 0 && !keyless) {
      throw new SignError(
        "sign-policy",
        `${where}: keyless identities need a trustedRoot in the policy file`,
      );
    }
    if (keys.length === 0 && identities.length === 0) {
      throw new SignError("sign-policy", `${where}: a rule needs keys or keyless identities`);
    }
    return {
      ...(typeof entry.registry === "string" ? { registry: entry.registry } : {}),
      ...(typeof entry.project === "string" ? { project: entry.project } : {}),
      keys,
      ...(identities.length > 0 && keyless ? { keyless: keyless(identities) } : {}),
    };
  };
  const rules = record.rules === undefined ? [] : record.rules;
  if (!Array.isArray(rules)) throw new SignError("sign-policy", `${file}: rules must be a list`);
  return {
    rules: await Promise.all(rules.map((entry, i) => rule(entry, `${file}: rules[${i}]`))),
    ...(record.default === undefined ? {} : { default: await rule(record.default, `${file}: default`) }),
  };
}

/** The policy's default rule with extra keys (the CLI's `--source-public-key`) added. */
export function withDefaultKeys(
  policy: SourcePolicy | undefined,
  keys: readonly VerificationKey[],
): SourcePolicy {
  const base = policy ?? { rules: [] };
  if (keys.length === 0) return base;
  const previous = base.default;
  return {
    rules: base.rules,
    default: {
      keys: [...(previous?.keys ?? []), ...keys],
      ...(previous?.keyless ? { keyless: previous.keyless } : {}),
    },
  };
}
