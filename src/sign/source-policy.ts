import { isJsonObject } from "../json-shape.js";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { runBounded } from "../concurrency/index.js";
import { describeError } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import type { Digest, RepositoryLocation } from "../reference/index.js";
import { openOnSide, type CallOptions, type RepositoryOpener } from "../registry/index.js";
import type { TrustMaterial } from "@sigstore/verify";
import { checkAttestations } from "./check-attestations.js";
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
 * Source signature policy: before an image is promoted, what its staging digest carries is
 * checked against trusted keys or keyless identities. The policy has a default rule and rules
 * per source registry (as the manifest names it) or project; the first matching rule applies,
 * then the default; an edge no rule covers is not checked. The CLI's `--source-public-key` keys
 * form the default rule.
 *
 * Two modes (docs/signing.md, "Source signature policy"):
 * - `required`: the digest must carry a signature (cosign `.sig` layer or signing bundle
 *   referrer) by a trusted signer;
 * - `if-present`: kpromo's "verify if present": a digest with no signature and no attestation is
 *   promoted (reported as unsigned), but one that carries either must have it verify.
 * In both, attestations staging carries (`.att` layers, attestation bundle referrers) must
 * verify when present: an attestation by someone else refuses the edge. One valid signature (or
 * attestation) among others is enough, as for cosign: staging's tags are written by whoever can
 * push there, and extra junk next to a valid signature proves nothing either way.
 */

export const SOURCE_SIGNATURE_MODES = ["required", "if-present"] as const;
export type SourceSignatureMode = (typeof SOURCE_SIGNATURE_MODES)[number];

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
  /** `required` (default) or `if-present`. */
  readonly mode?: SourceSignatureMode;
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
 * - `verified`: a signature (or, in `if-present` mode with no signature, an attestation) by a
 *   trusted signer, and no attestation that fails;
 * - `unsigned`: `if-present` mode, nothing signed is there: promoted, "source unsigned (not
 *   required)";
 * - `refused`: see `reason`.
 */
export type SourceVerdictStatus = "verified" | "unsigned" | "refused";

export interface SourceVerdict {
  readonly request: SourceCheckRequest;
  readonly status: SourceVerdictStatus;
  /** For `refused`: why, naming what was found. */
  readonly reason?: string;
  /** Who signed what verified (key ids, keyless subjects). */
  readonly signers: readonly string[];
}

export interface SourceCheckOptions {
  readonly provider: RepositoryOpener;
  /** `required` by default. */
  readonly mode?: SourceSignatureMode;
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
  readonly concurrency?: number;
}

/** Judges one source digest by its rule (see the module comment for the modes). */
async function judgeSource(
  request: SourceCheckRequest,
  mode: SourceSignatureMode,
  provider: RepositoryOpener,
  call: CallOptions,
): Promise<SourceVerdict> {
  const store = openOnSide(provider, request.location, "source");
  const expectation = {
    keys: request.rule.keys,
    ...(request.rule.keyless ? { keyless: request.rule.keyless } : {}),
  };
  const signatures = await checkSignatures(store, request.digest, expectation, call);
  const attestations = await checkAttestations(store, request.digest, expectation, call);
  const signers = [...signatures.signers, ...attestations.signers];
  const refused = (reason: string): SourceVerdict => ({ request, status: "refused", reason, signers });
  if (attestations.status === "invalid") {
    return refused(`an attestation is present but none verifies: ${attestations.reasons.join("; ")}`);
  }
  if (signatures.status === "invalid") {
    return refused(`a signature is present but none verifies: ${signatures.reasons.join("; ")}`);
  }
  if (signatures.status === "missing") {
    if (mode === "required") return refused(signatures.reasons.join("; "));
    if (attestations.status === "missing") return { request, status: "unsigned", signers };
  }
  return { request, status: "verified", signers };
}

/**
 * Checks each source digest against its rule. A source that cannot be read is refused (what it
 * carries cannot be shown), in both modes.
 */
export async function judgeSourceSignatures(
  requests: readonly SourceCheckRequest[],
  options: SourceCheckOptions,
): Promise<SourceVerdict[]> {
  const logger = options.logger ?? silentLogger;
  const mode = options.mode ?? "required";
  const call = options.signal ? { signal: options.signal } : {};
  const verdicts = new Array<SourceVerdict>(requests.length);
  // The signal is checked here, not by runBounded, so an abort rejects with the signal's reason.
  await runBounded(requests, options.concurrency ?? 8, async (request, index) => {
    options.signal?.throwIfAborted();
    try {
      verdicts[index] = await judgeSource(request, mode, options.provider, call);
    } catch (error) {
      if (options.signal?.aborted) throw error;
      verdicts[index] = {
        request,
        status: "refused",
        reason: `the source signature could not be read: ${describeError(error)}`,
        signers: [],
      };
    }
  });
  const count = (status: SourceVerdictStatus) =>
    verdicts.filter((verdict) => verdict.status === status).length;
  const refused = count("refused");
  logger.log(refused > 0 ? "warn" : "info", "source signatures checked", {
    mode,
    digests: requests.length,
    refused,
    unsigned: count("unsigned"),
  });
  return verdicts;
}

/** The refusals of {@link judgeSourceSignatures} (verdict key -> reason). */
export async function checkSourceSignatures(
  requests: readonly SourceCheckRequest[],
  options: SourceCheckOptions,
): Promise<Map<string, string>> {
  const refusals = new Map<string, string>();
  for (const verdict of await judgeSourceSignatures(requests, options)) {
    if (verdict.status === "refused") refusals.set(verdict.request.key, verdict.reason ?? "refused");
  }
  return refusals;
}

/**
 * What `keylessSourcePolicy` builds from: cosign's and kpromo's `--certificate-identity[-regexp]`
 * and `--certificate-oidc-issuer[-regexp]` (one of each pair at least; expressions are RE2 syntax
 * matching the whole value) and the trust material of the sigstore deployment.
 */
export interface KeylessSourcePolicyOptions {
  readonly certificateIdentity?: string;
  readonly certificateIdentityRegExp?: string;
  readonly certificateOidcIssuer?: string;
  readonly certificateOidcIssuerRegExp?: string;
  /** `loadTrustedRoot(file, base)` or `trustMaterialFromTrustedRoot(json, where)`. */
  readonly trust: TrustMaterial;
  /** Keys trusted next to the identity (none by default). */
  readonly keys?: readonly VerificationKey[];
  /** `required` by default; kpromo's staging check is `if-present`. */
  readonly mode?: SourceSignatureMode;
}

/**
 * A source policy held in memory: one default rule trusting one keyless identity (and any
 * keys), for every source. Throws `SignError` (`sign-policy`) when the identity lacks a subject or
 * an issuer, or an expression is not RE2 syntax JavaScript reads the same way.
 */
export function keylessSourcePolicy(options: KeylessSourcePolicyOptions): SourcePolicy {
  const identity: KeylessIdentity = {
    ...(options.certificateIdentity === undefined ? {} : { subject: options.certificateIdentity }),
    ...(options.certificateIdentityRegExp === undefined
      ? {}
      : { subjectRegExp: options.certificateIdentityRegExp }),
    ...(options.certificateOidcIssuer === undefined ? {} : { issuer: options.certificateOidcIssuer }),
    ...(options.certificateOidcIssuerRegExp === undefined
      ? {}
      : { issuerRegExp: options.certificateOidcIssuerRegExp }),
  };
  checkKeylessIdentity(identity, "the keyless source identity");
  return {
    rules: [],
    default: { keys: options.keys ?? [], keyless: createKeylessPolicy([identity], options.trust) },
    ...(options.mode === undefined ? {} : { mode: options.mode }),
  };
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
    ...(base.mode === undefined ? {} : { mode: base.mode }),
  };
}
