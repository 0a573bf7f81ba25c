import { plural } from "../../output/quantities.js";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { describeError, UsageError } from "../../errors.js";
import { edgesChangedSince } from "../../gitops/index.js";
import type { Logger } from "../../log.js";
import { collectReviewRecords } from "../../provenance/index.js";
import { createHttpStack, Redactor } from "../../registry/index.js";
import {
  FINDINGS_FAIL_ON,
  judgeFindings,
  type Finding,
  type FindingsFailOn,
  type JudgedFindings,
} from "../../manifest/index.js";
import { loadManifests, manifestTreeRoot, type ManifestInput } from "../../manifest-files/index.js";
import {
  allOfFilters,
  edgesFromDocument,
  PlanDocumentError,
  shardFilter,
  type PromotionEdge,
  type SavedPlanEdge,
} from "../../plan/index.js";
import {
  planPromotion,
  promotePipelined,
  planSavedPlan,
  promotionDocument,
  promotionFailed,
  promotionReport,
  runPlanned,
  type PlannedPromotion,
  type PromotionResult,
  type SignatureOptions,
} from "../../promote/index.js";
import { booleanOption, integerOption, stringOption, type Command, type ParsedValues } from "../command.js";
import { findingText } from "../format.js";
import { jsonText } from "../../output/encode.js";
import { ExitCode, writeLine, type CliIO } from "../io.js";
import { writeOutputFile } from "../output-sink.js";
import { createCliLogger, parseLogLevel, type LogFormat } from "../logger.js";
import { manifestInputFromOptions, manifestOptionSpecs } from "../manifest-options.js";
import { ProgressReporter } from "../progress.js";
import { confirmedWrite, confirmOptionSpecs } from "../confirm-option.js";
import { shardFromOptions, shardOptionSpecs } from "../shard-options.js";
import {
  googleRegistryHostsOption,
  registryOptionSpecs,
  storeProviderFromOptions,
} from "../registry-options.js";
import { registryPolicyFromOptions, registryPolicyOptionSpecs } from "../registry-policy-options.js";
import { planSectionsText, promotionOutput } from "../render/promotion.js";
import type { AttestationLayout, AttestOptions, SourcePolicy } from "../../sign/index.js";
import { packageVersion } from "../version.js";
import {
  attachmentModeOption,
  attestationLayoutOption,
  promoteSignatureOptionSpecs,
  signatureFormatOption,
  signerFromOptions,
  sourcePolicyFromOptions,
} from "../signing-options.js";

const OUTPUTS = ["text", "json", "markdown"] as const;
type Output = (typeof OUTPUTS)[number];

export const promoteCommand: Command = {
  words: ["promote"],
  summary: "Plan a promotion, and with --confirm copy the images to every destination",
  usage:
    "promote (--manifest FILE | --thin-manifest-dir DIR) [--from-plan FILE] [--confirm | --dry-run]\n" +
    "        [--output text|json|markdown] [--report FILE] [--plan-file FILE] [--concurrency N] [--insecure-registry HOST[:PORT]]\n" +
    "        [--sign-key FILE [--sign-identity REF]] [--max-signature-ops N]\n" +
    "        [--attestation-layout referrer|cosign|both | --no-attestations]\n" +
    "        [--source-signature required|if-present (--source-public-key FILE | --source-policy FILE)]\n" +
    "        [--shard I/N | --shards N] [--shard-by repository|image] [--allow-registry NAME ...]",
  description: `
Reads the manifests, asks the registries only what the promotion needs (where each wanted tag
points, whether each wanted digest exists) and decides every edge (image, digest, tag x
destination): already done, add a tag, copy, refused (a tag that points at another digest is
never moved), or missing in the source. Without --confirm nothing is written: the plan is shown
(--dry-run says so explicitly; with --confirm it is a usage error).
With --confirm the images are copied (blobs first, manifests bottom-up, tags last, so a tag never
points at an incomplete image) and the result is shown. Reading, deciding and copying overlap:
each group of repositories that share nothing with the others is copied as soon as it is read,
so a slow registry holds back only its own images; the decisions are those a dry run shows, and
the plan is printed after the run (docs/promotion.md, "Pipelined promotion").

A plan saved with --plan-file runs later with --from-plan and the same manifests: the plan only
chooses among the edges the manifests declare, and what runs and is shown comes from them. An
edge of the plan the manifests do not declare (field by field), or whose decision changed, stops
the run before anything is written.

Invalid manifest entries are reported and skipped; the rest is promoted. A refused or failed edge
blocks only itself. Registries are checked before any request (docs/manifest-format.md, "Registry
policy"): one on this machine or a private network, or an oci: layout outside the tree, is skipped
with an error unless allowed with --allow-registry; with --changed-since REV the tree's
manifests/registry-policy.yaml is read at REV for a dry run (the plan of a change is judged by
the policy it is based on, as check judges it) and from the working copy with --confirm (the
reviewed tree a merge promotes). No connection reaches an internal address except
on the hosts of --allow-registry, whatever a name resolves to. State is read from the registries, so an interrupted run is completed by
running again.

With --sign-key (or --keyless) every promoted digest, and each image of an index, is signed once
in cosign's layout (sha256-<hex>.sig) as its canonical name (--sign-identity, default the first
destination), and the same signature manifest is written to every destination. A signature
already there counts as ours only when it fully verifies: with our key, or, for --keyless, with
a certificate from --trusted-root naming --certificate-identity (or matching the RE2 expression
--certificate-identity-regexp as a whole) and --certificate-oidc-issuer[-regexp] (layers staging
carries may be anyone's). --max-signature-ops N bounds the digests signed and written at once.
Staging's signatures, attestations, SBOMs and referrers go along (--attachments).

A run that signs also attests, as kpromo does with --sign: every signed digest (each image of an
index too) gets a promotion attestation (in-toto, https://k8s.io/promo-tools/promotion/v1: staging
and production references, the manifest file and line that approved it, the promoter's version)
and a SLSA verification summary (VSA), each signed once and stored as a sigstore bundle referrer
(--attestation-layout referrer, the default), in cosign's .att tag (cosign) or both. Like
signatures they are made once per run, written identically to every mirror, and a re-run only
copies ours where missing; attestations by other keys are left alone. --no-attestations signs
without them. See docs/signing.md, "Promotion attestations".

--source-signature required (or --require-source-signature) refuses an edge whose staging digest
has no valid signature by a --source-public-key (or a --source-policy identity);
--source-signature if-present promotes a digest that carries no signature and no attestation
("source unsigned (not required)") but refuses one whose signature or attestation, when
present, verifies by none of them. In both modes an attestation staging carries must verify.
Signatures are part of the plan and are reconciled like images: a re-run adds whatever is
missing. See docs/signing.md.

With --shard I/N (0-based I) only the destination repositories of shard I of N are planned and
written, so N workers share one promotion without overlap; --shards N takes I from
JOB_COMPLETION_INDEX (a Kubernetes Indexed Job). Repositories are split by a stable hash of
their name; --shard-by image keeps all mirrors of an image in one shard, so its source blobs are
read once. Limits such as --requests-per-second apply per worker. See docs/sharding.md.

Manifest errors fail the run as --fail-on-findings says (all; with --changed-since only the
errors REV did not have), and a digest missing from both source and destination as
--missing-source says (fail; warn lists kpromo's _LOST_ edges without failing; new fails only
for digests REV did not ask for). Invalid entries are never promoted either way.

Exit status: 0 every edge done or already done; 1 some edge refused or failed, manifest errors
that fail, or --changed-since refused a git repository inside the manifest tree; 2 invalid
input or usage. Formats: docs/promotion.md.`,
  options: {
    ...manifestOptionSpecs,
    ...confirmOptionSpecs("Write to the registries"),
    output: { type: "string", valueName: "FORMAT", description: "text (default), json or markdown" },
    report: {
      type: "string",
      valueName: "FILE",
      description: "Write the JSON report (every edge's outcome, bytes, requests)",
    },
    "plan-file": {
      type: "string",
      valueName: "FILE",
      description: "Save the plan as JSON, to run later with --from-plan",
    },
    "from-plan": {
      type: "string",
      valueName: "FILE",
      description:
        "Run exactly this saved plan: refused unless the manifests declare every edge of it and the registries still match it",
    },
    concurrency: { type: "string", valueName: "N", description: "Blob transfers in flight (default 8)" },
    quiet: { type: "boolean", short: "q", description: "No progress display" },
    "log-format": { type: "string", valueName: "FORMAT", description: "Log lines as text (default) or json" },
    "log-level": { type: "string", valueName: "LEVEL", description: "debug, info (default), warn or error" },
    "changed-since": {
      type: "string",
      valueName: "REV",
      description: "Only edges added since this git revision, e.g. HEAD^ (docs/owners.md)",
    },
    "fail-on-findings": {
      type: "string",
      valueName: "WHICH",
      description:
        "Manifest errors that fail the run: all (default for a full run) or new (default with --changed-since: only those REV did not have)",
    },
    "missing-source": {
      type: "string",
      valueName: "MODE",
      description:
        "A digest missing from the source and the destination: fail (default), warn (reported, the run does not fail; kpromo's _LOST_) or new (with --changed-since: fail only for digests REV did not ask for)",
    },
    ...promoteSignatureOptionSpecs,
    ...shardOptionSpecs,
    ...registryPolicyOptionSpecs,
    ...registryOptionSpecs,
  },
  run: runPromote,
};

/**
 * A promotion from parsed flags: `promoter promote`, and `promoter cip` (a compatibility skin
 * that maps kpromo's flags onto these, cli/commands/cip.ts) over the same engine.
 */
export async function runPromote({
  io,
  values,
  judgePlan,
  sourcePolicy,
}: {
  io: CliIO;
  values: ParsedValues;
  /**
   * Instead of running the plan, judge it and return the exit status (`cip
   * --vuln-severity-threshold`, which only checks what would be promoted). Nothing is written.
   */
  judgePlan?: (planned: PlannedPromotion) => Promise<number>;
  /** The staging signature policy, instead of the one the flags describe (`cip`'s kpromo flags). */
  sourcePolicy?: SourcePolicy;
}): Promise<number> {
  const output: Output = stringOption(values, "output", OUTPUTS) ?? "text";
  const logFormat: LogFormat = stringOption(values, "log-format", ["text", "json"] as const) ?? "text";
  const confirm = confirmedWrite(values);
  const quiet = booleanOption(values, "quiet");
  const concurrency = integerOption(values, "concurrency", 1, 1024);
  const fromPlan = stringOption(values, "from-plan");
  const input = manifestInputFromOptions(values, true);
  if (input === undefined) {
    throw new UsageError(
      fromPlan === undefined
        ? "give --manifest FILE or --thin-manifest-dir DIR"
        : "--from-plan FILE is checked against the manifests it was made from: also give --manifest FILE or --thin-manifest-dir DIR",
    );
  }
  const shard = shardFromOptions(values, io);
  if (shard && fromPlan !== undefined) {
    throw new UsageError(
      "--from-plan runs a saved plan as it is: shard when making it (--shard with --plan-file)",
    );
  }
  const changedSince = stringOption(values, "changed-since");
  const failOnFindings: FindingsFailOn =
    stringOption(values, "fail-on-findings", FINDINGS_FAIL_ON) ??
    (changedSince === undefined ? "all" : "new");
  const missingSource = stringOption(values, "missing-source", MISSING_SOURCE_MODES) ?? "fail";
  if (missingSource === "new" && changedSince === undefined) {
    throw new UsageError("--missing-source new compares with --changed-since REV: give it too");
  }
  // Which allow-list (manifests/registry-policy.yaml) decides: a dry run of a change (the plan a
  // pull request shows) is judged by the policy at REV, as check is, so the change cannot widen
  // it; a run that writes runs after the merge, on the reviewed working copy, and uses its
  // allow-list, so a registry the reviewed tree dropped since REV is refused.
  const registryPolicy = await registryPolicyFromOptions(
    values,
    io,
    input,
    confirm ? undefined : changedSince,
  );
  const logLevel = parseLogLevel(stringOption(values, "log-level"));
  const logger = createCliLogger(io.stderr, { format: logFormat, level: quiet ? "warn" : logLevel });
  const provider = storeProviderFromOptions(values, io, logger);
  const started = performance.now();
  try {
    const signatures = await signatureOptions(values, io, sourcePolicy, { input, logger });
    const options = {
      provider,
      signal: io.signal,
      logger,
      confirm,
      manifestMapHosts: googleRegistryHostsOption(values),
      ...(concurrency === undefined ? {} : { copyConcurrency: concurrency }),
      ...(signatures ? { signatures } : {}),
    };

    const progressReporter = (copies?: PlannedPromotion["plan"]["copies"]) =>
      new ProgressReporter({
        stream: io.stderr,
        mode: quiet ? "quiet" : logFormat === "json" ? "json" : io.stderr.isTTY ? "tty" : "plain",
        logger,
        ...(copies
          ? {
              totalTasks: copies.length,
              totalDestinations: copies.reduce((sum, copy) => sum + copy.destinations.length, 0),
            }
          : {}),
      });

    const set = await loadManifests(input, {
      signal: io.signal,
      cwd: io.cwd,
      registryPolicy,
    });
    let planned: PlannedPromotion;
    let pipelined: PromotionResult | undefined;
    let baseFindings: readonly Finding[] | undefined;
    let baseDigests: ReadonlySet<string> | undefined;
    if (fromPlan !== undefined) {
      // The plan only selects among the edges the manifests produce: what runs, and what is
      // shown, comes from the manifests (docs/promotion.md#saved-plans).
      const saved = await readPlanFile(path.resolve(io.cwd, fromPlan));
      const check = await planSavedPlan(set, saved, options);
      planned = check.planned;
      if (check.undeclared.length > 0 || check.drift.length > 0)
        writeFindings(io, judgeFindings(planned.validation.findings, undefined, failOnFindings));
      if (check.undeclared.length > 0) {
        writeLine(
          io.stderr,
          `promoter promote: ${fromPlan} asks for edges the manifests do not declare; nothing was written:`,
        );
        writeList(io, check.undeclared);
        writeLine(
          io.stderr,
          "Every field but position and decision must be what the manifests produce: make a new plan and review it.",
        );
        return ExitCode.failed;
      }
      if (check.drift.length > 0) {
        writeLine(
          io.stderr,
          `promoter promote: the registries no longer match the plan in ${fromPlan}; nothing was written:`,
        );
        writeList(io, check.drift);
        writeLine(io.stderr, "Make a new plan and review it.");
        return ExitCode.failed;
      }
    } else {
      let changed: Awaited<ReturnType<typeof edgesChangedSince>> | undefined;
      if (changedSince !== undefined) {
        // A git repository hidden in the tree is a RefusedError: exit 1 (cli/main.ts).
        changed = await edgesChangedSince(input, changedSince, { cwd: io.cwd, signal: io.signal });
        baseFindings = changed.baseFindings;
        baseDigests = changed.baseDigests;
        for (const finding of changed.unread) {
          writeLine(
            io.stderr,
            `${findingText(io.cwd, { ...finding, severity: "warning" })} (its edges count as added)`,
          );
        }
      }
      const filter = allOfFilters(changed?.filter, shard && shardFilter(shard, shard.by));
      const planOptions = { ...options, ...(filter ? { filter } : {}) };
      if (confirm && !judgePlan && stringOption(values, "plan-file") === undefined) {
        // Nothing to show or save before writing: discovery and copying overlap (docs/promotion.md,
        // "Pipelined promotion"); the plan is shown afterwards, as it was decided.
        const progress = progressReporter();
        let done: PromotionResult;
        try {
          done = await promotePipelined(set, { ...planOptions, onEvent: progress.onEvent });
        } finally {
          progress.finish();
        }
        pipelined = done;
        planned = done;
      } else {
        planned = await planPromotion(set, planOptions);
      }
    }
    const findings = judgeFindings(planned.validation.findings, baseFindings, failOnFindings);
    writeFindings(io, findings);

    if (judgePlan) {
      const status = await judgePlan(planned);
      return findings.ok ? status : ExitCode.failed;
    }

    const planFile = stringOption(values, "plan-file");
    if (planFile !== undefined) {
      const document = promotionDocument(planned, { kind: "plan", cwd: io.cwd });
      await writeOutputFile(io, path.resolve(io.cwd, planFile), `${jsonText(document, 2)}\n`);
    }

    let result: PromotionResult = planned;
    if (confirm) {
      if (output === "text") {
        io.stdout.write(planSectionsText(planned, io.cwd, "Promotion plan"));
      }
      if (pipelined) {
        result = pipelined;
      } else {
        const progress = progressReporter(planned.plan.copies);
        try {
          result = await runPlanned(planned, { ...options, onEvent: progress.onEvent });
        } finally {
          progress.finish();
        }
      }
    }

    const elapsedMs = performance.now() - started;
    // Built only when asked for: on the whole registry.k8s.io tree it is 720,000 edge entries.
    const reportFile = stringOption(values, "report");
    const report =
      reportFile !== undefined || output === "json"
        ? promotionReport(result, {
            kind: confirm ? "report" : "plan",
            cwd: io.cwd,
            durationMs: elapsedMs,
            requests: provider.requestCounts(),
            ...(shard ? { shard } : {}),
          })
        : undefined;
    if (reportFile !== undefined) {
      await writeOutputFile(io, path.resolve(io.cwd, reportFile), `${jsonText(report, 2)}\n`);
    }

    if (output === "json") io.stdout.write(`${jsonText(report, 2)}\n`);
    else io.stdout.write(promotionOutput(result, { format: output, confirm, cwd: io.cwd, elapsedMs, shard }));
    // Once per host, whatever the number of edges it failed (docs/reliability.md).
    for (const problem of provider.hostProblems()) {
      writeLine(io.stderr, `promoter promote: registry host ${problem.host}: ${problem.text}`);
    }

    // A lost digest the base already asked for (a new mirror of an old image that staging has
    // since deleted) is not the change's doing; one the change asks for is (docs/promotion.md).
    const tolerateMissingSource =
      missingSource === "warn"
        ? () => true
        : missingSource === "new"
          ? (edge: PromotionEdge) => baseDigests?.has(edge.digest) ?? false
          : undefined;
    if (tolerateMissingSource) writeLost(io, lostEdges(result, tolerateMissingSource), missingSource);
    return promotionFailed(result, tolerateMissingSource ? { tolerateMissingSource } : {}) ||
      !findings.ok ||
      io.signal.aborted
      ? ExitCode.failed
      : ExitCode.ok;
  } finally {
    await provider.close();
  }
}

/** Signing, attachments and source policy from the flags; undefined when none applies. */
async function signatureOptions(
  values: ParsedValues,
  io: CliIO,
  givenSourcePolicy: SourcePolicy | undefined,
  run: { readonly input: ManifestInput; readonly logger: Logger },
): Promise<SignatureOptions | undefined> {
  const signer = await signerFromOptions(values, io);
  const sourcePolicy = givenSourcePolicy ?? (await sourcePolicyFromOptions(values, io));
  const attachments = attachmentModeOption(values);
  if (!signer && !sourcePolicy && attachments === "none") return undefined;
  const identity = stringOption(values, "sign-identity");
  const maxSignatureOps = integerOption(values, "max-signature-ops", 1, 1024);
  const layout = attestationLayoutOption(values);
  const attest = signer && layout ? attestOptions(layout, io, run.input, run.logger) : undefined;
  return {
    ...(signer ? { signer } : {}),
    ...(attest ? { attest } : {}),
    ...(maxSignatureOps === undefined ? {} : { maxSignatureOps }),
    ...(sourcePolicy ? { sourcePolicy } : {}),
    attachments,
    format: signatureFormatOption(values),
    signChildren: !booleanOption(values, "sign-index-only"),
    ...(identity === undefined ? {} : { identity }),
  };
}

/**
 * What the attestations say: the review of each promoted digest (its manifest file and line, the
 * commit that added the line, the merge commit, the pull request and its approvers, from git and
 * the CI: docs/signing.md "Where the review facts come from"). Staging's verified provenance is
 * added by the library. The facts are collected only when a run has something to attest.
 */
function attestOptions(
  layout: AttestationLayout,
  io: CliIO,
  input: ManifestInput,
  logger: Logger,
): AttestOptions {
  const manifestDir = manifestTreeRoot(input, io.cwd);
  return {
    promoterVersion: packageVersion(),
    layout,
    collectFacts: async (targets, signal) => {
      const redactor = io.secrets ?? new Redactor();
      const http = createHttpStack({ logger, redactor });
      try {
        const reviewOf = await collectReviewRecords(
          {
            manifestDir,
            env: io.env,
            logger,
            http: { transport: http.transport, redactor },
            ...(signal ? { signal } : {}),
          },
          targets.flatMap((target) => (target.position ? [target.position] : [])),
        );
        return (target) => (target.position ? { review: reviewOf(target.position) } : {});
      } finally {
        await http.close();
      }
    },
  };
}

/** The first lines of a refusal's list (a tampered plan can have millions of edges). */
const MAX_LISTED_EDGES = 50;

function writeList(io: CliIO, lines: readonly string[]): void {
  for (const line of lines.slice(0, MAX_LISTED_EDGES)) writeLine(io.stderr, `  ${line}`);
  if (lines.length > MAX_LISTED_EDGES)
    writeLine(io.stderr, `  ... and ${lines.length - MAX_LISTED_EDGES} more`);
}

async function readPlanFile(file: string): Promise<SavedPlanEdge[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read plan file ${file}: ${describeError(error)}`);
  }
  try {
    return edgesFromDocument(JSON.parse(text));
  } catch (error) {
    if (error instanceof PlanDocumentError)
      throw new UsageError(`${file}: ${error.message}`, { cause: error });
    throw new UsageError(`${file}: not valid JSON (${describeError(error)})`);
  }
}

const MISSING_SOURCE_MODES = ["fail", "warn", "new"] as const;

function writeFindings(io: CliIO, judged: JudgedFindings): void {
  for (const finding of judged.findings) {
    writeLine(io.stderr, findingText(io.cwd, finding));
  }
  if (judged.errors > 0) {
    writeLine(
      io.stderr,
      `${plural(judged.errors, "manifest error")}: those entries are skipped; everything else is planned.`,
    );
  }
  if (judged.tolerated > 0) {
    writeLine(
      io.stderr,
      `${plural(judged.tolerated, "older manifest error")} reported as warnings (--fail-on-findings new): those entries are skipped too.`,
    );
  }
}

/** "image@digest -> destination" of the tolerated edges missing on both sides (kpromo's _LOST_). */
function lostEdges(result: PromotionResult, tolerated: (edge: PromotionEdge) => boolean): string[] {
  return result.plan.edges
    .filter(({ edge, decision }) => decision.kind === "missing-source" && tolerated(edge))
    .map(({ edge }) => `${edge.image}@${edge.digest} -> ${edge.destinationRegistry.name}`);
}

function writeLost(io: CliIO, lost: readonly string[], mode: string): void {
  if (lost.length === 0) return;
  const which = mode === "new" ? "asked for before this change; " : "";
  writeLine(
    io.stderr,
    `warning: ${plural(lost.length, "edge")} _LOST_: the digest is neither in the source nor in the destination; ${which}not failing (--missing-source ${mode}):`,
  );
  writeList(io, lost);
}
