import { plural } from "../../output/quantities.js";
import { UsageError } from "../../errors.js";
import { validate } from "../../manifest/index.js";
import { loadManifests } from "../../manifest-files/index.js";
import { promotionEdges, type PlannedEdge } from "../../plan/index.js";
import {
  attestationProblems,
  checkIdentity,
  canonicalRegistries,
  repairSignatures,
  signatureTargets,
  verifyDocument,
  verifyProblems,
  verifyAttestationTargets,
  verifyTargets,
  type ApproverPolicy,
  type AttestationResult,
  type VerifyResult,
} from "../../sign/index.js";
import { booleanOption, integerOption, stringOption, type Command, type ParsedValues } from "../command.js";
import { jsonText, textLines, textValue } from "../../output/encode.js";
import { shortDigest } from "../format.js";
import { ExitCode, writeLine, type CliIO } from "../io.js";
import { confirmedWrite } from "../confirm-option.js";
import { createCliLogger, type LogFormat } from "../logger.js";
import { manifestInputFromOptions, manifestOptionSpecs } from "../manifest-options.js";
import { registryOptionSpecs, storeProviderFromOptions } from "../registry-options.js";
import { registryPolicyFromOptions, registryPolicyOptionSpecs } from "../registry-policy-options.js";
import { textSections } from "../render/sections.js";
import { signaturesText } from "../render/signatures.js";
import {
  signatureFormatOption,
  signerFromOptions,
  signerOptionSpecs,
  trustedSignerOptionSpecs,
  trustedSigners,
} from "../signing-options.js";

const OUTPUTS = ["text", "json"] as const;
type Output = (typeof OUTPUTS)[number];

export const verifyCommand: Command = {
  words: ["verify"],
  summary: "Check that every promoted image carries a valid signature at every destination",
  usage:
    "verify (--manifest FILE | --thin-manifest-dir DIR) --public-key FILE [--sign-identity REF] [--output text|json]\n" +
    "       [--attestations [--require-approvers N] [--require-independent-approver]]\n" +
    "       [--repair [--confirm | --dry-run] [--sign-key FILE | --keyless --trusted-root FILE\n" +
    "        (--certificate-identity ID | --certificate-identity-regexp RE)\n" +
    "        (--certificate-oidc-issuer URL | --certificate-oidc-issuer-regexp RE)]] [--allow-registry NAME ...]",
  description: `
For every digest the manifests promote (and each image of an index), at every destination that
holds it, checks that a valid signature is there: cosign's sha256-<hex>.sig layout (each
simple-signing payload fetched, hashed and verified with ECDSA-SHA256) or a sigstore bundle
referrer, signed by one of the --public-key keys (or a --policy keyless identity) and naming the
expected identity (--sign-identity, default the first destination, as promote signs). Prints the
missing and invalid signatures.

With --attestations, also the promotion attestations promote writes (docs/signing.md,
"Admitting only promoted images"): for every promoted digest and image of an index, at every
destination, a promotion record (https://k8s.io/promo-tools/promotion/v1) and a SLSA
verification summary (https://slsa.dev/verification_summary/v1), as a sigstore bundle referrer
or a cosign .att layer, signed by the same keys or keyless identities, about that digest and
naming the expected identity (dstRef, resourceUri). Each is valid, missing, invalid (altered,
signed by someone else, about another digest or reference: the reason names the destination and
the referrer), or unapproved: --require-approvers N wants at least N approvers recorded in the
promotion record, --require-independent-approver one approver who is not the pull request's
author. Whether the mirrors hold the same attestation is shown. Attestations are not repaired:
the next promote writes what is missing.

With --repair the missing ones are fixed: the signature manifest found at the other destinations
(the union of all of them, computed once) is copied, or, with --sign-key (or --keyless), a
signature is made where none of ours fully verifies. Without --confirm --repair only shows what
it would write.

Registries are checked before any request, as promote checks them (docs/manifest-format.md,
"Registry policy"): one on this machine or a private network, or an oci: layout outside the tree,
is skipped with an error unless allowed with --allow-registry, and the tree's
manifests/registry-policy.yaml applies. No connection reaches an internal address except on the
hosts of --allow-registry, whatever a name resolves to.

Exit status: 0 every signature (and attestation) valid (or repaired); 1 some missing, invalid
or unapproved, or a registry
refused; 2 invalid input.`,
  options: {
    ...manifestOptionSpecs,
    ...trustedSignerOptionSpecs,
    attestations: {
      type: "boolean",
      description: "Also check the promotion attestation and VSA of every promoted digest",
    },
    "require-approvers": {
      type: "string",
      valueName: "N",
      description: "With --attestations: at least N approvers recorded in each promotion record",
    },
    "require-independent-approver": {
      type: "boolean",
      description: "With --attestations: an approver who is not the pull request's author",
    },
    repair: { type: "boolean", description: "Fix missing signatures (dry run without --confirm)" },
    confirm: { type: "boolean", description: "With --repair: write (without it: dry run)" },
    "dry-run": { type: "boolean", description: "With --repair: only show the repair plan (the default)" },
    output: { type: "string", valueName: "FORMAT", description: "text (default) or json" },
    quiet: { type: "boolean", short: "q", description: "Only warnings and errors on stderr" },
    "log-format": { type: "string", valueName: "FORMAT", description: "Log lines as text (default) or json" },
    ...signerOptionSpecs,
    ...registryPolicyOptionSpecs,
    ...registryOptionSpecs,
  },
  run: runVerify,
};

async function runVerify({ io, values }: { io: CliIO; values: ParsedValues }): Promise<number> {
  const output: Output = stringOption(values, "output", OUTPUTS) ?? "text";
  const logFormat: LogFormat = stringOption(values, "log-format", ["text", "json"] as const) ?? "text";
  const repair = booleanOption(values, "repair");
  const confirm = confirmedWrite(values);
  const input = manifestInputFromOptions(values);
  if (confirm && !repair) throw new UsageError("--confirm writes repairs: give --repair too");
  const hasSigner = stringOption(values, "sign-key") !== undefined || booleanOption(values, "keyless");
  if (hasSigner && !repair) throw new UsageError("--sign-key and --keyless sign repairs: give --repair too");
  const identity = stringOption(values, "sign-identity");
  if (identity !== undefined) checkIdentity(identity);
  const attestations = booleanOption(values, "attestations");
  const approvers: ApproverPolicy = {
    ...optionalEntry("minApprovers", integerOption(values, "require-approvers", 1, 1000)),
    ...(booleanOption(values, "require-independent-approver") ? { independentApprover: true } : {}),
  };
  if (!attestations && Object.keys(approvers).length > 0) {
    throw new UsageError(
      "--require-approvers and --require-independent-approver judge the promotion attestation: give --attestations too",
    );
  }

  const { keys, keyless } = await trustedSigners(values, io);
  const signer = repair ? await signerFromOptions(valuesWithoutIdentity(values), io) : undefined;
  if (signer?.verificationKey && !keys.some((key) => key.keyId === signer.verificationKey?.keyId)) {
    // Signatures we make during the repair must count.
    keys.push(signer.verificationKey);
  }

  const logger = createCliLogger(io.stderr, {
    format: logFormat,
    level: booleanOption(values, "quiet") ? "warn" : "info",
  });
  const registryPolicy = await registryPolicyFromOptions(values, io, input);
  const provider = storeProviderFromOptions(values, io, logger);
  try {
    const set = await loadManifests(input, { signal: io.signal, cwd: io.cwd, registryPolicy });
    const validation = validate(set);
    for (const finding of validation.findings.filter((entry) => entry.severity === "error")) {
      writeLine(
        io.stderr,
        `${finding.position.file}:${finding.position.line}:${finding.position.column}: error[${finding.rule}]: ${finding.message}`,
      );
    }
    const edges: PlannedEdge[] = [];
    for (const edge of promotionEdges(set)) edges.push({ edge, decision: { kind: "unchanged" } });
    const targets = signatureTargets(edges, {
      ...(identity === undefined ? {} : { identity }),
      canonicalRegistries: canonicalRegistries(set),
    });
    const expectation = { keys, ...(keyless ? { keyless } : {}) };
    const signChildren = !booleanOption(values, "sign-index-only");
    const verifyOptions = { provider, expectation, signChildren, signal: io.signal };
    logger.log("info", "checking signatures", { digests: targets.length });
    let results: readonly VerifyResult[] = await verifyTargets(targets, verifyOptions);
    const unsignable = repair && !signer ? withoutValidSignature(results) : [];

    const repaired = repair
      ? await repairSignatures(targets, results, {
          ...verifyOptions,
          confirm,
          ...(signer ? { signer } : {}),
          format: signatureFormatOption(values),
          logger,
        })
      : undefined;
    if (repaired) results = repaired.results;

    let attested: AttestationResult[] | undefined;
    if (attestations) {
      logger.log("info", "checking attestations", { digests: targets.length });
      attested = await verifyAttestationTargets(targets, {
        provider,
        expectation: { keys, ...(keyless ? { keyless } : {}), approvers },
        signChildren,
        signal: io.signal,
      });
    }
    const attestationFailures = attested ? attestationProblems(attested) : [];

    const problems = verifyProblems(results);
    if (output === "json") {
      const document = verifyDocument(results, {
        ...(repaired ? { repair: repaired } : {}),
        ...(attested ? { attestations: attested } : {}),
      });
      io.stdout.write(`${jsonText(document, 2)}\n`);
    } else {
      io.stdout.write(
        textSections([
          verifyText(results, problems),
          attested ? attestationsText(attested, attestationFailures) : "",
          repaired && !repaired.outcomes ? "Repair plan (dry run: add --confirm to write)" : "",
          repaired
            ? signaturesText(repaired.plan, repaired.outcomes ? { outcomes: repaired.outcomes } : {})
            : "",
        ]),
      );
    }
    if (unsignable.length > 0) {
      // A repair copies a valid signature from another destination; with none anywhere, only
      // signing helps, and nothing was given to sign with.
      writeLine(
        io.stderr,
        `promoter verify: ${plural(unsignable.length, "digest")} (${unsignable.map(shortDigest).join(", ")}) ${unsignable.length === 1 ? "has" : "have"} no valid signature at any destination to copy: --repair needs a key to sign ${unsignable.length === 1 ? "it" : "them"} (--sign-key FILE, or --keyless with its certificate options)`,
      );
    }
    const failedRepairs = repaired?.outcomes?.some((outcome) => outcome.status === "failed") ?? false;
    return problems.length > 0 ||
      attestationFailures.length > 0 ||
      failedRepairs ||
      !validation.ok ||
      io.signal.aborted
      ? ExitCode.failed
      : ExitCode.ok;
  } finally {
    await provider.close();
  }
}

/**
 * `--sign-identity`, `--sign-index-only` and `--signature-format` also shape the check, so they
 * are allowed without a signer here (promote refuses them without one).
 */
function valuesWithoutIdentity(values: ParsedValues): ParsedValues {
  const {
    "sign-identity": _identity,
    "sign-index-only": _indexOnly,
    "signature-format": _format,
    ...rest
  } = values;
  return rest;
}

function verifyText(results: readonly VerifyResult[], problems: readonly VerifyResult[]): string {
  const checked = results.filter((result) => result.status !== "not-promoted");
  const count = (status: string) => results.filter((result) => result.status === status).length;
  const notPromoted = count("not-promoted");
  const out = [
    `Signatures: ${plural(checked.length, "signature")} checked: ${count("valid")} valid, ${count("missing")} missing, ${count("invalid")} invalid${count("unreadable") > 0 ? `, ${count("unreadable")} unreadable` : ""}${notPromoted > 0 ? ` (${plural(notPromoted, "destination")} without the image, not checked)` : ""}`,
    "",
  ];
  if (problems.length === 0) return `${textLines(out)}\n`;
  out.push(
    ...problemTable(
      ["STATUS", "DESTINATION", "IMAGE", "DIGEST", "WHY"],
      problems.map((result) => [...placeCells(result), result.reasons.join("; ")]),
    ),
  );
  return `${textLines(out)}\n`;
}

/** The first cells of a problem's row: its status and where it is. */
function placeCells(result: VerifyResult | AttestationResult): string[] {
  return [
    result.status,
    result.destination,
    `${result.target.image}${result.role === "child" ? " (image of index)" : ""}`,
    shortDigest(result.subject),
  ];
}

/** A table of problems, the last column unpadded, and a blank line. */
function problemTable(header: readonly string[], cells: readonly string[][]): string[] {
  // Cells are encoded before the widths are measured: registry reasons can carry anything.
  const rows = cells.map((row) => row.map((cell) => textValue(cell)));
  const widths = header.map((title, i) =>
    Math.min(60, Math.max(title.length, ...rows.map((row) => (row[i] ?? "").length))),
  );
  const line = (row: readonly string[]) =>
    row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join("  ");
  return [line(header), ...rows.map(line), ""];
}

/** Digests with a missing or invalid signature somewhere and a valid one nowhere, sorted. */
function withoutValidSignature(results: readonly VerifyResult[]): string[] {
  const valid = new Set(
    results.filter((result) => result.status === "valid").map((result) => result.subject),
  );
  const broken = results
    .filter(
      (result) => (result.status === "missing" || result.status === "invalid") && !valid.has(result.subject),
    )
    .map((result) => result.subject as string);
  return [...new Set(broken)].sort();
}

function optionalEntry<K extends string, V>(name: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [name]: value } as Record<K, V>);
}

const KIND_NAMES: Readonly<Record<AttestationResult["kind"], string>> = {
  promotion: "promotion record",
  summary: "VSA",
};

function attestationsText(
  results: readonly AttestationResult[],
  problems: readonly AttestationResult[],
): string {
  const checked = results.filter((result) => result.status !== "not-promoted");
  const count = (status: string) => results.filter((result) => result.status === status).length;
  // Each attestation whose mirrors hold different ones, once.
  const differing = new Map<string, string>();
  for (const result of results) {
    if (result.identicalAcrossMirrors !== false) continue;
    differing.set(
      `${result.subject} ${result.kind}`,
      `${KIND_NAMES[result.kind]} of ${shortDigest(result.subject)}`,
    );
  }
  const extra = [
    count("unapproved") > 0 ? `${count("unapproved")} unapproved` : "",
    count("unreadable") > 0 ? `${count("unreadable")} unreadable` : "",
  ].filter((part) => part !== "");
  const out = [
    `Attestations: ${plural(checked.length, "attestation")} checked: ${count("valid")} valid, ${count("missing")} missing, ${count("invalid")} invalid${extra.length > 0 ? `, ${extra.join(", ")}` : ""}`,
    differing.size === 0
      ? "Identical at every mirror that holds them."
      : `Not identical across mirrors: ${[...differing.values()].join(", ")}`,
    "",
  ];
  if (problems.length === 0) return `${textLines(out)}\n`;
  out.push(
    ...problemTable(
      ["STATUS", "DESTINATION", "IMAGE", "DIGEST", "ATTESTATION", "WHY"],
      problems.map((result) => [...placeCells(result), KIND_NAMES[result.kind], result.reasons.join("; ")]),
    ),
  );
  return `${textLines(out)}\n`;
}
