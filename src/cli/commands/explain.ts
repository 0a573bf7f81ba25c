import { describeError, UsageError } from "../../errors.js";
import { isJsonObject } from "../../json-shape.js";
import { validate } from "../../manifest/index.js";
import { loadManifests, parseAllowRegistryOptions } from "../../manifest-files/index.js";
import { registryRefusal } from "../../manifest/index.js";
import { jsonText, textLines, textValue } from "../../output/encode.js";
import { promotionEdges, type PlannedEdge } from "../../plan/index.js";
import { recordedApprovers, recordedAuthor } from "../../provenance/index.js";
import {
  parseImageReference,
  parseRegistryLocation,
  type Digest,
  type RepositoryLocation,
} from "../../reference/index.js";
import { openOnSide, type RepositoryOpener } from "../../registry/index.js";
import {
  ATTESTATION_KINDS,
  canonicalRegistries,
  checkIdentity,
  checkPromotionAttestation,
  promotedSubjects,
  signatureTargets,
  type PromotionAttestationCheck,
  type AttestationExpectation,
  type AttestationKind,
  type FoundAttestation,
  type SignatureTarget,
} from "../../sign/index.js";
import { stringListOption, stringOption, type Command, type ParsedValues } from "../command.js";
import { shortDigest } from "../format.js";
import { ExitCode, writeLine, type CliIO } from "../io.js";
import { createCliLogger } from "../logger.js";
import { manifestInputFromOptions, manifestOptionSpecs } from "../manifest-options.js";
import { trustedSignerOptionSpecs, trustedSigners } from "../signing-options.js";
import { registryOptionSpecs, storeProviderFromOptions } from "../registry-options.js";
import { registryPolicyFromOptions, registryPolicyOptionSpecs } from "../registry-policy-options.js";

const OUTPUTS = ["text", "json"] as const;
type Output = (typeof OUTPUTS)[number];

export const EXPLAIN_DOCUMENT_SCHEMA = "image-promoter/explain";
export const EXPLAIN_DOCUMENT_VERSION = 1;

export const explainCommand: Command = {
  words: ["explain"],
  summary: "Show who built, approved, promoted and signed one production image, from its attestations",
  usage:
    "explain IMAGE@DIGEST (--public-key FILE | --policy FILE) [--manifest FILE | --thin-manifest-dir DIR]\n" +
    "        [--sign-identity REF] [--output text|json] [--allow-registry NAME ...]",
  positionals: { min: 1, max: 1, names: "IMAGE@DIGEST" },
  description: `
Reads the promotion attestation (and the VSA) that promote wrote next to one production image
and prints the chain behind it: built by (staging's builder and source), from commit (the commit
that added the digest to the manifest), approved by (the pull request, its author and
approvers), merged in, promoted at (time and promoter version), signed by (the key or keyless
identity that verified), and on which mirrors it holds (each: valid, missing or invalid, with
the reason). Only attestations that verify with --public-key (or the --policy file's default
rule) and are about this digest count.

IMAGE is a production reference (registry.example.com/prod/app@sha256:...), read at that
repository alone; or, with --manifest / --thin-manifest-dir, the image's canonical name (the
identity signatures carry, --sign-identity or the first destination) or any of its
destinations: every destination the manifests promote it to is then read, and the records must
name the canonical reference. A digest of an image inside a promoted index is found through its
index.

Everything the registries hold is untrusted text: it is printed with control characters and
escape sequences shown escaped (\\u001b, \\n), never acted on.

Exit status: 0 a valid promotion attestation at every mirror that holds the image; 1 one is
missing or invalid somewhere, the image is not there, or the manifests do not promote it; 2
invalid input.`,
  options: {
    ...manifestOptionSpecs,
    ...trustedSignerOptionSpecs,
    "sign-identity": {
      type: "string",
      valueName: "REF",
      description:
        "With manifests: the canonical name prefix promote signed as (default the first destination)",
    },
    output: { type: "string", valueName: "FORMAT", description: "text (default) or json" },
    ...registryPolicyOptionSpecs,
    ...registryOptionSpecs,
  },
  run: ({ io, values, positionals }) => runExplain(io, values, positionals[0] ?? ""),
};

/** Where the image is looked at, and the name its records must carry. */
interface Lookup {
  readonly digest: Digest;
  readonly name: string;
  /** The canonical identity, when the manifests say it. */
  readonly identity?: string;
  readonly role: "root" | "child";
  /** The promoted digest (the index, for an image of one). */
  readonly promoted: Digest;
  readonly mirrors: readonly { readonly key: string; readonly location: RepositoryLocation }[];
}

interface MirrorReport {
  readonly key: string;
  readonly present: boolean;
  readonly checks: Partial<Record<AttestationKind, PromotionAttestationCheck>>;
  readonly error?: string;
}

function splitReference(reference: string): { name: string; digest: Digest } {
  const at = reference.lastIndexOf("@");
  if (at <= 0) throw new UsageError(`IMAGE@DIGEST ${JSON.stringify(reference)}: no @sha256:... digest`);
  let parsed;
  try {
    parsed = parseImageReference(reference);
  } catch (error) {
    throw new UsageError(`IMAGE@DIGEST ${JSON.stringify(reference)}: ${describeError(error)}`);
  }
  if (parsed.digest === undefined || parsed.tag !== undefined) {
    throw new UsageError(`IMAGE@DIGEST ${JSON.stringify(reference)}: name a digest, without a tag`);
  }
  return { name: reference.slice(0, at), digest: parsed.digest };
}

async function runExplain(io: CliIO, values: ParsedValues, reference: string): Promise<number> {
  const output: Output = stringOption(values, "output", OUTPUTS) ?? "text";
  const { name, digest } = splitReference(reference);
  const input = manifestInputFromOptions(values, true);
  const configuredIdentity = stringOption(values, "sign-identity");
  if (configuredIdentity !== undefined) {
    if (input === undefined) {
      throw new UsageError(
        "--sign-identity names the canonical image of the manifests: give --manifest or --thin-manifest-dir",
      );
    }
    checkIdentity(configuredIdentity);
  }
  const { keys, keyless } = await trustedSigners(values, io);
  const logger = createCliLogger(io.stderr, { format: "text", level: "warn" });
  const provider = storeProviderFromOptions(values, io, logger);
  try {
    let lookup: Lookup | string;
    if (input === undefined) {
      lookup = referenceLookup(name, digest, values, io);
    } else {
      const registryPolicy = await registryPolicyFromOptions(values, io, input);
      const set = await loadManifests(input, { signal: io.signal, cwd: io.cwd, registryPolicy });
      for (const finding of validate(set).findings.filter((entry) => entry.severity === "error")) {
        writeLine(
          io.stderr,
          `${finding.position.file}:${finding.position.line}:${finding.position.column}: error[${finding.rule}]: ${finding.message}`,
        );
      }
      const edges: PlannedEdge[] = [];
      for (const edge of promotionEdges(set)) edges.push({ edge, decision: { kind: "unchanged" } });
      const targets = signatureTargets(edges, {
        ...(configuredIdentity === undefined ? {} : { identity: configuredIdentity }),
        canonicalRegistries: canonicalRegistries(set),
      });
      lookup = await manifestLookup(name, digest, targets, provider, io.signal);
    }
    if (typeof lookup === "string") {
      writeLine(io.stderr, `promoter explain: ${textValue(lookup)}`);
      return ExitCode.failed;
    }
    const expectation: AttestationExpectation = {
      keys,
      ...(keyless ? { keyless } : {}),
      ...(lookup.identity === undefined ? {} : { identity: lookup.identity }),
    };
    const mirrors = await Promise.all(
      lookup.mirrors.map((mirror) => readMirror(mirror, lookup, expectation, provider, io.signal)),
    );
    const explained = explanation(lookup, mirrors);
    io.stdout.write(output === "json" ? `${jsonText(explained.document, 2)}\n` : explained.text);
    return explained.complete && !io.signal.aborted ? ExitCode.ok : ExitCode.failed;
  } finally {
    await provider.close();
  }
}

/** A production reference read where it points, as the operator's own (like snapshot's REF). */
function referenceLookup(name: string, digest: Digest, values: ParsedValues, io: CliIO): Lookup | string {
  const parsed = parseImageReference(name);
  const location: RepositoryLocation = {
    kind: "remote",
    host: parsed.registry,
    repository: parsed.repository,
  };
  const operatorAllowed = parseAllowRegistryOptions(stringListOption(values, "allow-registry"), io.cwd);
  const refusal = registryRefusal(parseRegistryLocation(name), { treeRoot: io.cwd, operatorAllowed });
  if (refusal !== undefined) return `refused: ${name}: ${refusal}`;
  return { digest, name, role: "root", promoted: digest, mirrors: [{ key: name, location }] };
}

/** The promoted image the manifests know by `name` (canonical name or a destination). */
async function manifestLookup(
  name: string,
  digest: Digest,
  targets: readonly SignatureTarget[],
  provider: RepositoryOpener,
  signal: AbortSignal,
): Promise<Lookup | string> {
  const named = targets.filter(
    (target) =>
      target.identities[0] === name || target.destinations.some((destination) => destination.key === name),
  );
  if (named.length === 0) return `the manifests promote no image named ${name}`;
  const lookupOf = (target: SignatureTarget, role: "root" | "child"): Lookup => ({
    digest,
    name,
    role,
    promoted: target.digest,
    ...(target.identities[0] === undefined ? {} : { identity: target.identities[0] }),
    mirrors: target.destinations.map((destination) => ({
      key: destination.key,
      location: destination.location,
    })),
  });
  const direct = named.find((target) => target.digest === digest);
  if (direct) return lookupOf(direct, "root");
  // An image of a promoted index: found by reading the indexes of this name where they are.
  for (const target of named) {
    for (const destination of target.destinations) {
      const store = openOnSide(provider, destination.location, "destination");
      try {
        if (!(await store.resolve(target.digest, { signal }))) continue;
        const subjects = await promotedSubjects(store, target.digest, true, { signal });
        if (subjects.some((subject) => subject.digest === digest)) return lookupOf(target, "child");
        break;
      } catch (error) {
        if (signal.aborted) throw error;
      }
    }
  }
  return `the manifests do not promote ${digest} as ${name} (nor as an image of an index they promote)`;
}

async function readMirror(
  mirror: Lookup["mirrors"][number],
  lookup: Lookup,
  expectation: AttestationExpectation,
  provider: RepositoryOpener,
  signal: AbortSignal,
): Promise<MirrorReport> {
  const store = openOnSide(provider, mirror.location, "destination");
  try {
    if (!(await store.resolve(lookup.digest, { signal })))
      return { key: mirror.key, present: false, checks: {} };
    const checks: Partial<Record<AttestationKind, PromotionAttestationCheck>> = {};
    for (const kind of ATTESTATION_KINDS) {
      checks[kind] = await checkPromotionAttestation(store, lookup.digest, kind, expectation, { signal });
    }
    return { key: mirror.key, present: true, checks };
  } catch (error) {
    if (signal.aborted) throw error;
    return { key: mirror.key, present: false, checks: {}, error: describeError(error) };
  }
}

/** The chain a promotion record tells, read from its (already verified) predicate. */
export interface PromotionChain {
  readonly builtBy?: {
    readonly builderId?: string;
    readonly sourceRepository?: string;
    readonly sourceCommit?: string;
    readonly slsaBuildLevel?: number;
  };
  readonly fromCommit?: Record<string, string>;
  readonly approvedBy: {
    readonly approvers: readonly string[];
    readonly pullRequest?: { readonly number?: number; readonly url?: string; readonly author?: string };
    readonly approvalSource?: string;
  };
  readonly mergedIn?: Record<string, string>;
  readonly manifest?: { readonly path?: string; readonly line?: number; readonly uri?: string };
  readonly promotedAt: {
    readonly timestamp: string;
    readonly promoterVersion?: string;
    readonly builderId: string;
    readonly srcRef: string;
    readonly dstRef: string;
  };
}

function object(value: unknown): Record<string, unknown> {
  return isJsonObject(value) ? value : {};
}

function text(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function strings(value: unknown, names: readonly string[]): Record<string, string> | undefined {
  const source = object(value);
  const picked = Object.fromEntries(
    names.flatMap((name) => {
      const entry = text(source[name]);
      return entry === undefined ? [] : [[name, entry]];
    }),
  );
  return Object.keys(picked).length === 0 ? undefined : picked;
}

/** `T` with its possibly-undefined properties made optional instead. */
type Defined<T> = { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } & {
  [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<T[K], undefined>;
};

function defined<T extends Record<string, unknown>>(record: T): Defined<T> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as Defined<T>;
}

export function promotionChain(found: FoundAttestation): PromotionChain | undefined {
  const statement = found.promotion;
  if (!statement) return undefined;
  const predicate = statement.predicate;
  const review = object(predicate.review);
  const build = object(predicate.build);
  const pr = object(review.pullRequest);
  const manifest = object(review.manifest);
  const commitFields = ["sha", "subject", "author", "time"] as const;
  const builtBy = defined({
    builderId: text(build.builderId),
    sourceRepository: text(build.sourceRepository),
    sourceCommit: text(build.sourceCommit),
    slsaBuildLevel: typeof build.slsaBuildLevel === "number" ? build.slsaBuildLevel : undefined,
  });
  const pullRequest = defined({
    number: typeof pr.number === "number" ? pr.number : undefined,
    url: text(pr.url),
    author: recordedAuthor(predicate),
  });
  const place = defined({
    path: text(manifest.path),
    line: typeof manifest.line === "number" ? manifest.line : undefined,
    uri: text(manifest.uri),
  });
  const fromCommit = strings(review.addedIn, commitFields);
  const mergedIn = strings(review.merge, commitFields);
  const approvalSource = text(pr.approvalSource);
  return {
    ...(Object.keys(builtBy).length > 0 ? { builtBy } : {}),
    ...(fromCommit ? { fromCommit } : {}),
    approvedBy: {
      approvers: recordedApprovers(predicate).map((approver) => approver.name),
      ...(Object.keys(pullRequest).length > 0 ? { pullRequest } : {}),
      ...(approvalSource === undefined ? {} : { approvalSource }),
    },
    ...(mergedIn ? { mergedIn } : {}),
    ...(Object.keys(place).length > 0 ? { manifest: place } : {}),
    promotedAt: defined({
      timestamp: statement.timestamp,
      promoterVersion: statement.promoterVersion,
      builderId: statement.builderId,
      srcRef: statement.srcRef,
      dstRef: statement.dstRef,
    }),
  };
}

function mirrorStatus(report: MirrorReport): Record<string, unknown> {
  if (report.error !== undefined)
    return { mirror: report.key, status: "unreadable", reasons: [report.error] };
  if (!report.present) return { mirror: report.key, status: "not-promoted" };
  const kinds = Object.fromEntries(
    ATTESTATION_KINDS.map((kind) => {
      const check = report.checks[kind];
      return [
        kind,
        defined({
          status: check?.status ?? "missing",
          reasons: check && check.reasons.length > 0 ? check.reasons : undefined,
          attestations:
            check && check.found.length > 0
              ? check.found.map((entry) => ({
                  digest: entry.digest,
                  layout: entry.layout,
                  signer: entry.signer,
                }))
              : undefined,
        }),
      ];
    }),
  );
  return { mirror: report.key, status: report.checks.promotion?.status ?? "missing", ...kinds };
}

function commitText(commit: Record<string, string> | undefined): string {
  if (!commit) return "not recorded";
  const parts = [commit.sha ?? "?"];
  if (commit.subject !== undefined) parts.push(JSON.stringify(commit.subject));
  if (commit.author !== undefined) parts.push(`by ${commit.author}`);
  if (commit.time !== undefined) parts.push(`at ${commit.time}`);
  return parts.join(" ");
}

function explanation(
  lookup: Lookup,
  mirrors: readonly MirrorReport[],
): { text: string; document: Record<string, unknown>; complete: boolean } {
  const held = mirrors.filter((mirror) => mirror.present);
  const promotions = held.flatMap((mirror) => mirror.checks.promotion?.found ?? []);
  const summaries = held.flatMap((mirror) => mirror.checks.summary?.found ?? []);
  const first = promotions[0];
  const chain = first ? promotionChain(first) : undefined;
  const signers = [...new Set([...promotions, ...summaries].map((entry) => entry.signer))];
  const distinct = new Set(
    held.map((mirror) =>
      (mirror.checks.promotion?.found ?? [])
        .map((entry) => entry.digest)
        .sort()
        .join(","),
    ),
  );
  const identical = distinct.size <= 1;
  const complete =
    held.length > 0 &&
    mirrors.every((mirror) => mirror.error === undefined) &&
    held.every(
      (mirror) => mirror.checks.promotion?.status === "valid" && mirror.checks.summary?.status === "valid",
    );
  const summary = summaries[0]?.summary;
  const document: Record<string, unknown> = {
    schema: EXPLAIN_DOCUMENT_SCHEMA,
    version: EXPLAIN_DOCUMENT_VERSION,
    image: lookup.name,
    digest: lookup.digest,
    role: lookup.role,
    ...(lookup.role === "child" ? { index: lookup.promoted } : {}),
    ...(lookup.identity === undefined ? {} : { identity: lookup.identity }),
    ...(chain ? { chain } : {}),
    signedBy: signers,
    ...(summary
      ? {
          verificationSummary: {
            verifier: summary.verifierId,
            result: summary.verificationResult,
            levels: summary.verifiedLevels,
            timeVerified: summary.timeVerified,
          },
        }
      : {}),
    identicalAcrossMirrors: identical,
    mirrors: mirrors.map(mirrorStatus),
  };

  const lines: string[] = [
    `${lookup.name}@${lookup.digest}${lookup.role === "child" ? ` (image of index ${shortDigest(lookup.promoted)})` : ""}`,
  ];
  const row = (label: string, value: string) => lines.push(`  ${label.padEnd(12)}${value}`);
  if (!chain) {
    row("attestation", "no valid promotion attestation at any mirror");
  } else {
    const built = chain.builtBy;
    row(
      "built by",
      built
        ? [
            built.builderId ?? "(builder not recorded)",
            built.sourceRepository === undefined
              ? undefined
              : `from ${built.sourceRepository}${built.sourceCommit === undefined ? "" : `@${built.sourceCommit}`}`,
            built.slsaBuildLevel === undefined ? undefined : `SLSA build level ${built.slsaBuildLevel}`,
          ]
            .filter((part) => part !== undefined)
            .join(", ")
        : "not recorded (no verified staging provenance)",
    );
    row("from commit", commitText(chain.fromCommit));
    const approval = chain.approvedBy;
    const pr = approval.pullRequest;
    row(
      "approved by",
      [
        approval.approvers.length > 0 ? approval.approvers.join(", ") : "no approvers recorded",
        pr
          ? `in pull request${pr.number === undefined ? "" : ` #${pr.number}`}${pr.url === undefined ? "" : ` ${pr.url}`}${pr.author === undefined ? "" : ` by ${pr.author}`}`
          : undefined,
        approval.approvalSource === undefined ? undefined : `(from ${approval.approvalSource})`,
      ]
        .filter((part) => part !== undefined)
        .join(" "),
    );
    row("merged in", commitText(chain.mergedIn));
    if (chain.manifest) {
      row(
        "manifest",
        [
          chain.manifest.path,
          chain.manifest.line === undefined ? undefined : `line ${chain.manifest.line}`,
          chain.manifest.uri === undefined ? undefined : `(${chain.manifest.uri})`,
        ]
          .filter((part) => part !== undefined)
          .join(" "),
      );
    }
    const promoted = chain.promotedAt;
    row(
      "promoted at",
      `${promoted.timestamp} by ${promoted.builderId}${promoted.promoterVersion === undefined ? "" : ` (version ${promoted.promoterVersion})`} from ${promoted.srcRef}`,
    );
    row("as", promoted.dstRef);
  }
  row("signed by", signers.length > 0 ? signers.join(", ") : "nothing verified");
  row(
    "summary",
    summary ? `VSA ${summary.verificationResult}: ${summary.verifiedLevels.join(", ")}` : "no valid VSA",
  );
  row(
    "mirrors",
    held.length > 1 ? (identical ? "the same attestation at each" : "NOT the same attestation at each") : "",
  );
  for (const mirror of mirrors) lines.push(`    ${mirror.key}  ${mirrorLine(mirror)}`);
  // Every value from the registries is untrusted: each line is escaped whole.
  return { text: `${textLines(lines)}\n`, document, complete };
}

function mirrorLine(mirror: MirrorReport): string {
  if (mirror.error !== undefined) return `unreadable: ${mirror.error}`;
  if (!mirror.present) return "does not hold the image";
  return ATTESTATION_KINDS.map((kind) => {
    const check = mirror.checks[kind];
    const label = kind === "promotion" ? "promotion record" : "VSA";
    if (!check) return `${label} not checked`;
    const where = check.found[0] ? ` (${check.found[0].layout} ${shortDigest(check.found[0].digest)})` : "";
    return `${label} ${check.status}${where}${check.reasons.length > 0 ? `: ${check.reasons.join("; ")}` : ""}`;
  }).join("; ");
}
