import { truncateForMessage } from "../errors.js";
import { isJsonObject } from "../json-shape.js";
import type { BuildRecord } from "../provenance/index.js";
import { digestAlgorithm, digestHex, type Digest } from "../reference/index.js";
import { wholeMatch } from "./keyless-policy.js";

/**
 * Staging's SLSA build provenance ("who built it"): the statement of a verified attestation read
 * into the builder, build type and source, and judged against what the source policy's rule
 * expects of it (docs/signing.md, "Build provenance"). Pure: verified statement bytes in, a
 * `BuildRecord` or a reason out. Finding and verifying the attestations is check-attestations.ts.
 *
 * https://slsa.dev/spec/v1.0/provenance (v1: `runDetails.builder.id`, `buildDefinition`)
 * https://slsa.dev/spec/v0.2/provenance (v0.2: `builder.id`, `invocation.configSource`, `materials`)
 *
 * Everything here comes from whoever built the image: strings are bounded, types checked, and a
 * value quoted in a reason is cut short.
 */

export const SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1";
export const SLSA_PROVENANCE_V02 = "https://slsa.dev/provenance/v0.2";
export const SLSA_PROVENANCE_TYPES: readonly string[] = [SLSA_PROVENANCE_V1, SLSA_PROVENANCE_V02];
/** In-toto statement types a provenance comes in (v0.2 generators still write Statement v0.1). */
const STATEMENT_TYPES: readonly string[] = [
  "https://in-toto.io/Statement/v1",
  "https://in-toto.io/Statement/v0.1",
];

/** A builder id, build type, repository or commit longer than this is not a plausible one. */
export const MAX_PROVENANCE_FIELD_LENGTH = 2048;
/** Dependencies and materials read, at most (real provenance lists a handful). */
const MAX_LISTED_SOURCES = 256;
/** The SLSA build levels an owner can vouch for (https://slsa.dev/spec/v1.0/levels). */
export const SLSA_BUILD_LEVELS: readonly number[] = [1, 2, 3];

export function isSlsaProvenanceType(predicateType: unknown): boolean {
  return typeof predicateType === "string" && SLSA_PROVENANCE_TYPES.includes(predicateType);
}

/**
 * What a rule asks of staging's provenance:
 * - `required`: a verified SLSA provenance about the digest must be there;
 * - `if-present` (default, kpromo's behaviour): one that is there must verify and meet the
 *   expectations; none at all is promoted with a note;
 * - `ignore`: provenance is not read (an attestation staging carries must still verify, as any).
 */
export const PROVENANCE_MODES = ["required", "if-present", "ignore"] as const;
export type ProvenanceMode = (typeof PROVENANCE_MODES)[number];

export interface ProvenancePolicy {
  readonly mode: ProvenanceMode;
  /** The builder id, exact. */
  readonly builderId?: string;
  /** ... or an RE2 expression it matches whole (checked by `checkRe2Pattern`). */
  readonly builderIdRegExp?: string;
  /** Source repositories accepted (`https://github.com/org/repo`, compared exactly); any when absent. */
  readonly sourceRepositories?: readonly string[];
  /**
   * The SLSA build level the owner vouches this builder meets; claimed for a digest only when its
   * provenance verified and met the builder expectation (levels 2 and 3 need one).
   */
  readonly buildLevel?: number;
}

export const DEFAULT_PROVENANCE_POLICY: ProvenancePolicy = { mode: "if-present" };

/** What a provenance statement says, before it is judged. */
export interface ProvenanceClaims {
  readonly predicateType: string;
  readonly builderId: string;
  readonly buildType?: string;
  readonly sourceRepository?: string;
  readonly sourceCommit?: string;
}

export type ProvenanceParse =
  { readonly ok: true; readonly value: ProvenanceClaims } | { readonly ok: false; readonly reason: string };

/** A value for a reason: quoted, cut short. */
export function quoted(value: string): string {
  return JSON.stringify(truncateForMessage(value, 200));
}

function boundedString(value: unknown): string | undefined {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_PROVENANCE_FIELD_LENGTH
    ? value
    : undefined;
}

function objectAt(value: unknown, ...path: string[]): Record<string, unknown> | undefined {
  let current = value;
  for (const name of path) {
    if (!isJsonObject(current)) return undefined;
    current = current[name];
  }
  return isJsonObject(current) ? current : undefined;
}

function listAt(value: Record<string, unknown> | undefined, name: string): Record<string, unknown>[] {
  const list = value?.[name];
  return Array.isArray(list) ? list.slice(0, MAX_LISTED_SOURCES).filter(isJsonObject) : [];
}

/**
 * The repository a git URI names: without the `git+` prefix and the `@ref` or `#path` after its
 * path (`git+https://github.com/org/repo@refs/heads/main` is `https://github.com/org/repo`).
 */
export function repositoryOfGitUri(uri: string): string {
  const bare = uri.startsWith("git+") ? uri.slice("git+".length) : uri;
  const scheme = bare.indexOf("://");
  const pathStart = scheme < 0 ? 0 : bare.indexOf("/", scheme + 3);
  if (pathStart < 0) return bare;
  const end = bare.slice(pathStart).search(/[@#]/);
  return end < 0 ? bare : bare.slice(0, pathStart + end);
}

interface Source {
  readonly repository?: string;
  readonly commit?: string;
}

/** A resource descriptor (v1) or material (v0.2) naming a git repository and its commit. */
function gitSource(entry: Record<string, unknown>): Source | undefined {
  const uri = boundedString(entry.uri);
  const digest = isJsonObject(entry.digest) ? entry.digest : {};
  const commit = boundedString(digest.gitCommit) ?? boundedString(digest.sha1);
  if (uri === undefined || commit === undefined || !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(commit))
    return undefined;
  return { repository: repositoryOfGitUri(uri), commit };
}

/**
 * v1: the repository GitHub's build types name (`externalParameters.workflow.repository`),
 * with the commit of the resolved dependency from that repository; otherwise the first resolved
 * dependency that is a git commit.
 */
function sourceV1(predicate: Record<string, unknown>): Source {
  const definition = objectAt(predicate, "buildDefinition");
  const workflow = objectAt(definition, "externalParameters", "workflow");
  const declared = boundedString(workflow?.repository);
  const sources = listAt(definition, "resolvedDependencies").flatMap((entry) => gitSource(entry) ?? []);
  if (declared !== undefined) {
    const repository = repositoryOfGitUri(declared);
    const commit = sources.find((source) => source.repository === repository)?.commit;
    return { repository, ...(commit === undefined ? {} : { commit }) };
  }
  return sources[0] ?? {};
}

/** v0.2: `invocation.configSource` (the build's entry point), otherwise the first git material. */
function sourceV02(predicate: Record<string, unknown>): Source {
  const configSource = objectAt(predicate, "invocation", "configSource");
  const fromConfig = configSource ? gitSource(configSource) : undefined;
  if (fromConfig) return fromConfig;
  const uri = boundedString(configSource?.uri);
  if (uri !== undefined) return { repository: repositoryOfGitUri(uri) };
  return listAt(predicate, "materials").flatMap((entry) => gitSource(entry) ?? [])[0] ?? {};
}

/**
 * The claims of a SLSA provenance statement (v1 or v0.2) about `subject`, or why it is none.
 * The caller verified the statement's signature; this reads what it says.
 */
export function parseSlsaProvenance(statementBytes: Uint8Array, subject: Digest): ProvenanceParse {
  let statement: unknown;
  try {
    statement = JSON.parse(new TextDecoder().decode(statementBytes));
  } catch {
    return { ok: false, reason: "the provenance statement is not JSON" };
  }
  if (
    !isJsonObject(statement) ||
    typeof statement._type !== "string" ||
    !STATEMENT_TYPES.includes(statement._type)
  ) {
    return { ok: false, reason: "the provenance is not an in-toto statement" };
  }
  const predicateType = statement.predicateType;
  if (typeof predicateType !== "string" || !isSlsaProvenanceType(predicateType)) {
    return { ok: false, reason: "the statement is not SLSA provenance" };
  }
  const subjects = Array.isArray(statement.subject) ? statement.subject.filter(isJsonObject) : [];
  const algorithm = digestAlgorithm(subject);
  if (
    !subjects.some((entry) => isJsonObject(entry.digest) && entry.digest[algorithm] === digestHex(subject))
  ) {
    return { ok: false, reason: `the provenance is not about ${subject}` };
  }
  const predicate = isJsonObject(statement.predicate) ? statement.predicate : undefined;
  if (!predicate) return { ok: false, reason: "the provenance has no predicate" };
  const v1 = predicateType === SLSA_PROVENANCE_V1;
  const builder = v1 ? objectAt(predicate, "runDetails", "builder") : objectAt(predicate, "builder");
  const rawBuilderId = builder?.id;
  if (typeof rawBuilderId !== "string" || rawBuilderId.length === 0) {
    return { ok: false, reason: `the ${predicateType} provenance names no builder id` };
  }
  const builderId = boundedString(rawBuilderId);
  if (builderId === undefined) {
    return {
      ok: false,
      reason: `the provenance's builder id is longer than ${MAX_PROVENANCE_FIELD_LENGTH} characters`,
    };
  }
  const buildType = boundedString(
    v1 ? objectAt(predicate, "buildDefinition")?.buildType : predicate.buildType,
  );
  const source = v1 ? sourceV1(predicate) : sourceV02(predicate);
  return {
    ok: true,
    value: {
      predicateType,
      builderId,
      ...(buildType === undefined ? {} : { buildType }),
      ...(source.repository === undefined ? {} : { sourceRepository: source.repository }),
      ...(source.commit === undefined ? {} : { sourceCommit: source.commit }),
    },
  };
}

/** Why the claims do not meet the policy's expectations, or undefined when they do. */
export function provenanceMismatch(claims: ProvenanceClaims, policy: ProvenancePolicy): string | undefined {
  if (policy.builderId !== undefined && claims.builderId !== policy.builderId) {
    return `built by ${quoted(claims.builderId)}, not the expected builder ${quoted(policy.builderId)}`;
  }
  if (policy.builderIdRegExp !== undefined && !wholeMatch(policy.builderIdRegExp, claims.builderId)) {
    return `built by ${quoted(claims.builderId)}, which does not match the expected builder ${quoted(policy.builderIdRegExp)}`;
  }
  const repositories = policy.sourceRepositories;
  if (repositories !== undefined && repositories.length > 0) {
    if (claims.sourceRepository === undefined) {
      return `the provenance names no source repository (expected ${repositories.map(quoted).join(" or ")})`;
    }
    if (!repositories.includes(claims.sourceRepository)) {
      return `built from ${quoted(claims.sourceRepository)}, not the expected source ${repositories.map(quoted).join(" or ")}`;
    }
  }
  return undefined;
}

/** A statement whose signature verified, and where it came from. */
export interface VerifiedStatement {
  readonly statement: Uint8Array;
  readonly predicateType: string;
  /** The DSSE envelope (`.att` layer) or sigstore bundle that holds it. */
  readonly envelope: Digest;
  readonly signer: string;
}

export type ProvenanceJudgement =
  | { readonly status: "verified"; readonly build: BuildRecord }
  | { readonly status: "absent" }
  | { readonly status: "refused"; readonly reason: string };

/**
 * Judges the verified provenance statements of a digest (and `unverified`: reasons for the
 * provenance attestations present that did not verify) by the policy. One provenance that meets
 * the expectations is enough (as one valid signature is); when none does, the reasons say why.
 */
export function judgeProvenance(
  subject: Digest,
  verified: readonly VerifiedStatement[],
  unverified: readonly string[],
  policy: ProvenancePolicy,
): ProvenanceJudgement {
  const reasons: string[] = [];
  for (const candidate of verified) {
    if (!isSlsaProvenanceType(candidate.predicateType)) continue;
    const parsed = parseSlsaProvenance(candidate.statement, subject);
    if (!parsed.ok) {
      reasons.push(`${candidate.envelope}: ${parsed.reason}`);
      continue;
    }
    const mismatch = provenanceMismatch(parsed.value, policy);
    if (mismatch !== undefined) {
      reasons.push(`${candidate.envelope} (signed by ${candidate.signer}): ${mismatch}`);
      continue;
    }
    const claims = parsed.value;
    return {
      status: "verified",
      build: {
        builderId: claims.builderId,
        ...(claims.buildType === undefined ? {} : { buildType: claims.buildType }),
        ...(claims.sourceRepository === undefined ? {} : { sourceRepository: claims.sourceRepository }),
        ...(claims.sourceCommit === undefined ? {} : { sourceCommit: claims.sourceCommit }),
        ...(policy.buildLevel === undefined ? {} : { slsaBuildLevel: policy.buildLevel }),
        attestation: {
          digest: candidate.envelope,
          predicateType: claims.predicateType,
          signer: candidate.signer,
        },
      },
    };
  }
  reasons.push(...unverified);
  if (reasons.length > 0) {
    return { status: "refused", reason: `no SLSA provenance is acceptable: ${reasons.join("; ")}` };
  }
  return { status: "absent" };
}
