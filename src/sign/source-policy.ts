import { isJsonObject } from "../json-shape.js";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { runBounded } from "../concurrency/index.js";
import { describeError } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import type { BuildRecord, VerifiedInput } from "../provenance/index.js";
import { formatRepositoryLocation, type Digest, type RepositoryLocation } from "../reference/index.js";
import { openOnSide, type CallOptions, type RepositoryOpener } from "../registry/index.js";
import type { TrustMaterial } from "@sigstore/verify";
import {
  DEFAULT_PROVENANCE_POLICY,
  isSlsaProvenanceType,
  judgeProvenance,
  PROVENANCE_MODES,
  SLSA_BUILD_LEVELS,
  SLSA_PROVENANCE_TYPES,
  type ProvenanceMode,
  type ProvenancePolicy,
} from "./build-provenance.js";
import { checkAttestations } from "./check-attestations.js";
import { checkSignatures } from "./check-signatures.js";
import { SignError } from "./errors.js";
import { loadVerificationKey, type VerificationKey } from "./keys.js";
import {
  checkKeylessIdentity,
  checkRe2Pattern,
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
 *
 * Each rule also says what staging's SLSA build provenance must be (`provenance`, see
 * build-provenance.ts): `if-present` by default, as kpromo does.
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
  /** What staging's build provenance must be; `if-present` when absent. */
  readonly provenance?: ProvenancePolicy;
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

/**
 * What became of staging's build provenance: `verified` (see `build`), `absent` (none there;
 * promoted unless the rule requires one), `refused` (the verdict's reason says why), `ignored`
 * (the rule does not read it), or `unread` (the source could not be read).
 */
export type SourceProvenanceStatus = "verified" | "absent" | "refused" | "ignored" | "unread";

export interface SourceVerdict {
  readonly request: SourceCheckRequest;
  readonly status: SourceVerdictStatus;
  /** For `refused`: why, naming what was found. */
  readonly reason?: string;
  /** Who signed what verified (key ids, keyless subjects). */
  readonly signers: readonly string[];
  readonly provenance: SourceProvenanceStatus;
  /** Staging's verified build provenance, when `provenance` is `verified`. */
  readonly build?: BuildRecord;
  /**
   * Every staging signature and attestation manifest that verified: `<staging repository>@<digest
   * of the .sig/.att manifest or bundle referrer>`. The inputs a verification summary lists.
   */
  readonly inputs: readonly VerifiedInput[];
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
  const repository = formatRepositoryLocation(request.location);
  const inputs = [...signatures.verifiedIn, ...attestations.verifiedIn].map((digest) => ({
    uri: `${repository}@${digest}`,
    digest,
  }));
  const policy = request.rule.provenance ?? DEFAULT_PROVENANCE_POLICY;
  const base = { request, signers, inputs };
  const refused = (reason: string, provenance: SourceProvenanceStatus = "unread"): SourceVerdict => ({
    ...base,
    status: "refused",
    reason,
    provenance,
  });
  if (attestations.status === "invalid") {
    return refused(`an attestation is present but none verifies: ${attestations.reasons.join("; ")}`);
  }
  if (signatures.status === "invalid") {
    return refused(`a signature is present but none verifies: ${signatures.reasons.join("; ")}`);
  }
  if (signatures.status === "missing" && mode === "required") return refused(signatures.reasons.join("; "));
  let provenance: { status: SourceProvenanceStatus; build?: BuildRecord } = { status: "ignored" };
  if (policy.mode !== "ignore") {
    const unverified = attestations.rejected
      .filter((entry) => isSlsaProvenanceType(entry.predicateType))
      .map((entry) => entry.reason);
    const judged = judgeProvenance(request.digest, attestations.statements, unverified, policy);
    if (judged.status === "refused") return refused(judged.reason, "refused");
    if (judged.status === "absent" && policy.mode === "required") {
      return refused(
        `no SLSA provenance (${SLSA_PROVENANCE_TYPES.join(" or ")}) by a trusted signer is attached, and the policy requires one`,
        "absent",
      );
    }
    provenance =
      judged.status === "verified" ? { status: "verified", build: judged.build } : { status: "absent" };
  }
  const judged = {
    ...base,
    provenance: provenance.status,
    ...(provenance.build ? { build: provenance.build } : {}),
  };
  if (signatures.status === "missing" && attestations.status === "missing") {
    return { ...judged, status: "unsigned" };
  }
  return { ...judged, status: "verified" };
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
        provenance: "unread",
        inputs: [],
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
    provenance: verdicts.filter((verdict) => verdict.provenance === "verified").length,
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
  provenance?: unknown;
  builderId?: unknown;
  builderIdRegExp?: unknown;
  sourceRepository?: unknown;
  buildLevel?: unknown;
}

const RULE_FIELDS: readonly string[] = [
  "registry",
  "project",
  "keys",
  "keyless",
  "provenance",
  "builderId",
  "builderIdRegExp",
  "sourceRepository",
  "buildLevel",
];

/** The provenance expectations of a rule (or of the CLI's flags), checked. */
export interface ProvenanceSettings {
  readonly provenance?: unknown;
  readonly builderId?: unknown;
  readonly builderIdRegExp?: unknown;
  readonly sourceRepository?: unknown;
  readonly buildLevel?: unknown;
}

/**
 * A rule's `ProvenancePolicy` from its settings, or undefined when it has none (`if-present`
 * applies). Throws `SignError` (`sign-policy`) for a bad value: an unknown mode, an expression
 * that is not portable RE2, expectations with `ignore`, a build level other than 1-3, or a level
 * above 1 without an expected builder (the level is the builder's; any builder proves none).
 */
export function provenancePolicyOf(
  settings: ProvenanceSettings,
  where: string,
): ProvenancePolicy | undefined {
  const { provenance, builderId, builderIdRegExp, sourceRepository, buildLevel } = settings;
  if (
    [provenance, builderId, builderIdRegExp, sourceRepository, buildLevel].every(
      (value) => value === undefined,
    )
  ) {
    return undefined;
  }
  if (provenance !== undefined && !PROVENANCE_MODES.includes(provenance as ProvenanceMode)) {
    throw new SignError("sign-policy", `${where}.provenance must be one of ${PROVENANCE_MODES.join(", ")}`);
  }
  const mode = (provenance as ProvenanceMode | undefined) ?? DEFAULT_PROVENANCE_POLICY.mode;
  for (const [name, value] of [
    ["builderId", builderId],
    ["builderIdRegExp", builderIdRegExp],
  ] as const) {
    if (value !== undefined && (typeof value !== "string" || value.length === 0)) {
      throw new SignError("sign-policy", `${where}.${name} must be a non-empty string`);
    }
  }
  if (typeof builderIdRegExp === "string") checkRe2Pattern(builderIdRegExp, `${where}.builderIdRegExp`);
  const repositories =
    typeof sourceRepository === "string"
      ? [sourceRepository]
      : stringList(sourceRepository, `${where}.sourceRepository`);
  if (
    buildLevel !== undefined &&
    (typeof buildLevel !== "number" || !SLSA_BUILD_LEVELS.includes(buildLevel))
  ) {
    throw new SignError("sign-policy", `${where}.buildLevel must be one of ${SLSA_BUILD_LEVELS.join(", ")}`);
  }
  const expectsBuilder = builderId !== undefined || builderIdRegExp !== undefined;
  if (mode === "ignore" && (expectsBuilder || repositories.length > 0 || buildLevel !== undefined)) {
    throw new SignError(
      "sign-policy",
      `${where}: builderId, builderIdRegExp, sourceRepository and buildLevel have no effect with provenance: ignore`,
    );
  }
  if (typeof buildLevel === "number" && buildLevel > 1 && !expectsBuilder) {
    throw new SignError(
      "sign-policy",
      `${where}: buildLevel ${buildLevel} needs builderId or builderIdRegExp (the level is the builder's)`,
    );
  }
  return {
    mode,
    ...(typeof builderId === "string" ? { builderId } : {}),
    ...(typeof builderIdRegExp === "string" ? { builderIdRegExp } : {}),
    ...(repositories.length > 0 ? { sourceRepositories: repositories } : {}),
    ...(typeof buildLevel === "number" ? { buildLevel } : {}),
  };
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
 *     provenance: required               # or if-present (default), ignore
 *     builderIdRegExp: https://github\.com/foo/bar/\.github/workflows/release\.yml@refs/tags/v.+
 *     sourceRepository: https://github.com/foo/bar
 *     buildLevel: 2
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
    const unknown = Object.keys(entry).filter((field) => !RULE_FIELDS.includes(field));
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
    const provenance = provenancePolicyOf(entry, where);
    return {
      ...(typeof entry.registry === "string" ? { registry: entry.registry } : {}),
      ...(typeof entry.project === "string" ? { project: entry.project } : {}),
      keys,
      ...(identities.length > 0 && keyless ? { keyless: keyless(identities) } : {}),
      ...(provenance ? { provenance } : {}),
    };
  };
  const rules = record.rules === undefined ? [] : record.rules;
  if (!Array.isArray(rules)) throw new SignError("sign-policy", `${file}: rules must be a list`);
  return {
    rules: await Promise.all(rules.map((entry, i) => rule(entry, `${file}: rules[${i}]`))),
    ...(record.default === undefined ? {} : { default: await rule(record.default, `${file}: default`) }),
  };
}

/**
 * The policy's default rule with the CLI's provenance expectations (`--source-provenance`...)
 * instead of its own. Throws `SignError` (`sign-policy`) when there is no default rule to apply
 * them to.
 */
export function withDefaultProvenance(policy: SourcePolicy, provenance: ProvenancePolicy): SourcePolicy {
  if (!policy.default) {
    throw new SignError(
      "sign-policy",
      "the provenance expectations apply to the default rule, and there is none (give --source-public-key or a default rule)",
    );
  }
  return { ...policy, default: { ...policy.default, provenance } };
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
      ...(previous?.provenance ? { provenance: previous.provenance } : {}),
    },
    ...(base.mode === undefined ? {} : { mode: base.mode }),
  };
}
