import { UsageError } from "../../errors.js";
import type { ParsedValues, Command, OptionSpecs } from "../command.js";
import { parseGoFlags, splitOptionWords, type GoFlagSpec, type GoFlagValues } from "../cip/go-flags.js";
import { parseSince } from "../cip/since.js";
import { PRESUBMIT_JOB_TYPES, prowChangeScope, timeWindowScope, type CipScope } from "../cip/change-scope.js";
import { writeLine, type CliIO } from "../io.js";
import { promoteCommand, runPromote } from "./promote.js";
import { runCipParseOnly } from "../cip/parse-only.js";
import { judgeVulnerabilities, kpromoSeverity } from "../cip/vulnerabilities.js";
import { readReports } from "./check.js";
import { runSnapshot } from "./snapshot.js";
import { certificateIdentityOptions } from "../signing-options.js";
import { keylessSourcePolicy, loadTrustedRoot, type SourcePolicy } from "../../sign/index.js";

/**
 * `promoter cip`: kpromo's `cip` command line on this promoter's engine, so a job that runs
 * `kpromo cip ...` runs unchanged with the binary renamed. Every kpromo flag keeps kpromo's
 * meaning; where that meaning is unsafe or impossible here the flag is accepted, the safe thing
 * is done, and a note says so once on stderr. The flags are translated into `promoter promote`'s
 * and the same code runs (runPromote): a compatibility skin, not a second engine.
 * docs/migrating-from-kpromo.md lists every flag.
 */

/** kpromo's `cip` flags and its root `--log-level` (cmd/kpromo/cmd/cip/cip.go, root.go). */
export const KPROMO_CIP_FLAGS = {
  confirm: {
    kind: "bool",
    help: "Write to the registries (kpromo: initiate a PRODUCTION image promotion); refused in a Prow presubmit",
  },
  manifest: {
    kind: "string",
    value: "FILE",
    help: "The manifest file to load (with --thin-manifest-dir too, only this, as kpromo)",
  },
  "thin-manifest-dir": {
    kind: "string",
    value: "DIR",
    help: "A thin-manifest tree: manifests/<project>/promoter-manifest.yaml + images/<project>/images.yaml",
  },
  "use-prow-manifest-diff": {
    kind: "bool",
    help: "Only the edges the Prow job's change added (JOB_TYPE, PULL_BASE_SHA)",
  },
  "manifest-diff-since": {
    kind: "string",
    value: "DURATION",
    help: 'Only the edges added within this time, e.g. 14d, "7 days", "1 week"',
  },
  "parse-only": { kind: "bool", help: "Only read and validate the manifests; no registry is asked" },
  snapshot: {
    kind: "string",
    value: "REG",
    help: "Print what a registry path holds, as images.yaml (or CSV with --output csv)",
  },
  "snapshot-tag": { kind: "string", value: "TAG", help: "With --snapshot: only images carrying this tag" },
  "minimal-snapshot": {
    kind: "bool",
    help: "With a snapshot: leave out tagless images that are children of an index",
  },
  "manifest-based-snapshot-of": {
    kind: "string",
    value: "REG",
    help: "Print what the manifests promote into this registry, without asking it",
  },
  output: {
    kind: "string",
    value: "FORMAT",
    help: "Snapshot format: yaml (default) or csv, kpromo's layouts",
  },
  sign: { kind: "bool", help: "Sign promoted images (default true, as kpromo); see the signing notes" },
  "signer-account": {
    kind: "string",
    value: "ACCOUNT",
    help: "kpromo's Google service account signing identity; see the signing notes",
  },
  "certificate-identity": {
    kind: "string",
    value: "ID",
    help: "Identity a staging signature must name when one is present",
  },
  "certificate-identity-regexp": {
    kind: "string",
    value: "RE",
    help: "Regular expression alternative to --certificate-identity",
  },
  "certificate-oidc-issuer": {
    kind: "string",
    value: "URL",
    help: "OIDC issuer a staging signature must name when one is present",
  },
  "certificate-oidc-issuer-regexp": {
    kind: "string",
    value: "RE",
    help: "Regular expression alternative to --certificate-oidc-issuer",
  },
  "max-signature-ops": {
    kind: "int",
    value: "N",
    help: "Signing operations at once (default 50, as kpromo)",
  },
  "vuln-severity-threshold": {
    kind: "int",
    value: "N",
    help: "Only check vulnerabilities of what would be promoted, 0-5 (kpromo's scale)",
  },
  "max-image-size": {
    kind: "int",
    value: "MIB",
    help: "Accepted and ignored, as kpromo ignores it (a note says so)",
  },
  "log-level": {
    kind: "string",
    value: "LEVEL",
    help: "trace, debug, info (default), warn, error, fatal or panic",
  },
} as const satisfies Record<string, GoFlagSpec & { help: string; value?: string }>;

type KpromoFlag = keyof typeof KPROMO_CIP_FLAGS;

/** kpromo's defaults (promoter/image/options/options.go DefaultOptions). */
const KPROMO_DEFAULTS = {
  sign: true,
  signerAccount: "krel-trust@k8s-releng-prod.iam.gserviceaccount.com",
  certificateIdentity: "krel-trust@k8s-releng-prod.iam.gserviceaccount.com",
  certificateOidcIssuer: "https://accounts.google.com",
  maxSignatureOps: 50,
} as const;

/**
 * `promoter promote` flags a cip run also takes (on the command line or in PROMOTER_CIP_OPTIONS):
 * everything but the names kpromo gives another meaning, and the change scope, which cip's own
 * flags choose.
 */
const NOT_EXTENSIONS = new Set<string>([
  ...Object.keys(KPROMO_CIP_FLAGS),
  "changed-since",
  "from-plan",
  "plan-file",
]);

export const CIP_EXTENSION_FLAGS: readonly string[] = Object.keys(promoteCommand.options).filter(
  (name) => !NOT_EXTENSIONS.has(name),
);

function goSpecs(): Record<string, GoFlagSpec> {
  // --vuln-report is `promoter check`'s: the findings kpromo's vulnerability mode reads elsewhere.
  const specs: Record<string, GoFlagSpec> = { "vuln-report": { kind: "strings" } };
  for (const [name, flag] of Object.entries(KPROMO_CIP_FLAGS)) specs[name] = { kind: flag.kind };
  for (const name of CIP_EXTENSION_FLAGS) {
    const spec = promoteCommand.options[name];
    if (!spec) continue;
    specs[name] = { kind: spec.type === "boolean" ? "bool" : spec.multiple ? "strings" : "string" };
  }
  return specs;
}

/** The options of --help: kpromo's flags (the migration guide's test reads them from here). */
function helpSpecs(): OptionSpecs {
  const specs: Record<string, OptionSpecs[string]> = {};
  for (const [name, flag] of Object.entries(KPROMO_CIP_FLAGS)) {
    specs[name] =
      flag.kind === "bool"
        ? { type: "boolean", description: flag.help }
        : { type: "string", valueName: "value" in flag ? flag.value : "VALUE", description: flag.help };
  }
  return specs;
}

/** The environment variable holding extra `promoter promote` flags for cip runs. */
export const CIP_OPTIONS_VARIABLE = "PROMOTER_CIP_OPTIONS";

export const cipCommand: Command = {
  words: ["cip"],
  summary: "kpromo's cip command line (drop-in): promote, snapshot or check as kpromo's flags say",
  usage:
    "cip (--manifest FILE | --thin-manifest-dir DIR) [--confirm[=true|false]] [--use-prow-manifest-diff | --manifest-diff-since DURATION]\n" +
    "        [--parse-only] [--sign=false] [--snapshot REG | --manifest-based-snapshot-of REG [--output yaml|csv]] [promote flags]",
  description: `
Runs a kpromo cip job line as it is, with the binary renamed (docs/migrating-from-kpromo.md): the
flags are kpromo's, written as Go programs take them (--name=value or --name value; booleans as
--name or --name=true|false), with kpromo's meaning and defaults, and the root flag --log-level
may come before "cip". The work is done by the same code as "promoter promote".

Change scope: --use-prow-manifest-diff promotes only the edges the Prow job's change added
(presubmit and batch: since PULL_BASE_SHA; postsubmit: since HEAD^); --manifest-diff-since
DURATION only those added since the branch's state that long ago. Both compare the manifests at
that commit with the working copy, edge by edge: a change that adds no edge promotes nothing and
asks no registry. In a change-scoped run, manifest errors the base already had are warnings and
do not fail it, errors the change brings do, and a digest it adds that staging lacks fails (an
older digest lost from staging, needed by a new mirror, is a warning). A full run
reports every error as a warning (the entries are skipped, never promoted) and reports a digest
missing from both staging and production as _LOST_ without failing, as kpromo does; add
--fail-on-findings all or --missing-source fail to make them fail.

Extra flags: any "promoter promote" flag whose name kpromo does not use (--allow-registry,
--sign-key, --keyless, --trusted-root, --report, --concurrency, ...) may be given on the command
line or in the environment variable ${CIP_OPTIONS_VARIABLE}, so a job gains them without editing
its command line. The variable only adds: kpromo's own flags, and a flag the command line also
gives, are refused there.

Signing: kpromo signs by default (--sign=true) with a Google service account (--signer-account).
A --confirm run that signs needs --sign-key or --keyless here, or it is refused before anything is
written; with --keyless, --signer-account signs as that account as kpromo does (its identity token
from IAM Credentials, with the job's Google credentials); --sign=false promotes unsigned. --certificate-identity[-regexp] and
--certificate-oidc-issuer[-regexp] check staging: a signature staging carries must be by that
identity, or the edge is refused.

Exit status: 0 done; 1 an edge refused or failed, or an error the change brought; 2 invalid
flags or input; 3 internal error. kpromo exits 1 on every failure.`,
  options: helpSpecs(),
  rawArguments: true,
  run: async ({ io, positionals }) => runCip(io, positionals),
};

/**
 * The command line's flags and PROMOTER_CIP_OPTIONS's, each parsed on its own (a flag ending the
 * line does not take the variable's first word). The job line is what reviewers read, so the
 * variable only adds: kpromo's flags (write or not, sign or not, which manifests, which scope)
 * are refused there, and so is a flag both give, rather than one silently overriding the other.
 */
function cipFlags(io: CliIO, argv: readonly string[]): GoFlagValues {
  const specs = goSpecs();
  const flags = parseGoFlags(argv, specs);
  const extra = parseGoFlags(splitOptionWords(io.env[CIP_OPTIONS_VARIABLE] ?? ""), specs, {
    variable: CIP_OPTIONS_VARIABLE,
  });
  for (const [name, value] of Object.entries(extra)) {
    if (name in KPROMO_CIP_FLAGS) {
      throw new UsageError(
        `--${name} in ${CIP_OPTIONS_VARIABLE}: kpromo's flags are read from the command line only, where the job says what it does; the variable adds promote flags (docs/migrating-from-kpromo.md)`,
      );
    }
    const given = flags[name];
    if (given === undefined) flags[name] = value;
    else if (Array.isArray(given) && Array.isArray(value)) flags[name] = [...given, ...value];
    else {
      throw new UsageError(
        `--${name} is given both on the command line and in ${CIP_OPTIONS_VARIABLE}: give it once`,
      );
    }
  }
  return flags;
}

async function runCip(io: CliIO, argv: readonly string[]): Promise<number> {
  const flags = cipFlags(io, argv);
  const notes = new CipNotes(io);
  const kpromo = (name: KpromoFlag) => flags[name];

  const values: Record<string, ParsedValues[string]> = {};
  for (const name of CIP_EXTENSION_FLAGS) {
    const value = flags[name];
    if (value !== undefined && typeof value !== "number") values[name] = value;
  }
  const manifest = kpromo("manifest");
  const thinDir = kpromo("thin-manifest-dir");
  if (typeof manifest === "string") {
    values.manifest = manifest;
    if (thinDir !== undefined) {
      notes.add(
        "--thin-manifest-dir is not read when --manifest is given (kpromo reads only --manifest then)",
      );
    }
  } else if (typeof thinDir === "string") values["thin-manifest-dir"] = thinDir;
  else if (kpromo("snapshot") === undefined && kpromo("manifest-based-snapshot-of") === undefined) {
    throw new UsageError("at least a manifest file or thin manifest directory have to be specified");
  }

  const snapshotOf = kpromo("snapshot");
  const manifestBasedOf = kpromo("manifest-based-snapshot-of");
  if (typeof snapshotOf === "string" || typeof manifestBasedOf === "string") {
    return runCipSnapshot(io, flags, values, notes);
  }
  const logLevel = kpromo("log-level");
  if (typeof logLevel === "string") values["log-level"] = ourLogLevel(logLevel);

  const scope = await changeScope(flags, io, notes);
  if (scope.kind === "change") values["changed-since"] = scope.base;
  if (scope.kind !== "full") writeLine(io.stderr, `promoter cip: ${scope.why}`);
  // kpromo never validated thin manifests: in a full run an old broken entry is a warning (it
  // is skipped all the same), and a digest lost from staging and production does not fail.
  values["fail-on-findings"] ??= scope.kind === "everything-new" ? "all" : "new";
  values["missing-source"] ??= scope.kind === "change" ? "new" : scope.kind === "full" ? "warn" : "fail";

  if (kpromo("parse-only") === true) {
    notes.flush();
    return runCipParseOnly(io, values, scope);
  }

  const confirm = kpromo("confirm") === true;
  const severity = kpromo("vuln-severity-threshold");
  if (typeof severity === "number" && severity >= 0) {
    const { threshold, note } = kpromoSeverity(severity);
    if (note) notes.add(note);
    const reportFiles = flags["vuln-report"];
    if (confirm && !Array.isArray(reportFiles)) {
      throw new UsageError(
        "--vuln-severity-threshold: kpromo reads vulnerabilities from Google's Container Analysis; here give the scanners' reports with --vuln-report FILE " +
          `(Trivy, Grype or SARIF; repeatable; on the command line or in ${CIP_OPTIONS_VARIABLE})`,
      );
    }
    const reports = Array.isArray(reportFiles) ? await readReports(io, reportFiles) : [];
    notes.flush();
    if (!confirm) {
      writeLine(io.stderr, "promoter cip: dry run: the vulnerability check runs with --confirm, as kpromo's");
      return runPromote({ io, values });
    }
    return runPromote({
      io,
      values,
      judgePlan: (planned) => Promise.resolve(judgeVulnerabilities(io, planned, reports, threshold)),
    });
  }
  if (confirm) {
    refuseWritesFromPresubmit(io.env);
    values.confirm = true;
  }
  signingFlags(flags, values, notes, confirm);
  if (kpromo("max-image-size") !== undefined) {
    notes.add(
      "--max-image-size is accepted and not applied, as kpromo ignores it (a hidden no-op there); `promoter check --max-image-size` limits sizes before a merge",
    );
  }
  values["max-signature-ops"] = String(flags["max-signature-ops"] ?? KPROMO_DEFAULTS.maxSignatureOps);
  const sourcePolicy = await stagingSignaturePolicy(flags, values, io, notes);
  notes.flush();
  return runPromote({ io, values, ...(sourcePolicy ? { sourcePolicy } : {}) });
}

/** The staging-signature flags kpromo checks with; the first two default to kpromo's signer. */
const IDENTITY_FLAGS = [
  "certificate-identity",
  "certificate-identity-regexp",
  "certificate-oidc-issuer",
  "certificate-oidc-issuer-regexp",
] as const;

/**
 * kpromo verifies what staging carries, when it carries something: a signature or provenance
 * attestation must be by `--certificate-identity[-regexp]` from `--certificate-oidc-issuer[-regexp]`
 * (defaults: kpromo's signer, Google), or the promotion fails. Here that is the source policy in
 * `if-present` mode (docs/signing.md), edge by edge. Verifying keyless signatures needs
 * sigstore's trusted root, which kpromo fetches and the promoter never does: without
 * --trusted-root a signature staging carries cannot be verified and its edge is refused (fail
 * closed); an unsigned image is promoted, as by kpromo. With --keyless, the same identity is the
 * one our own signatures are recognised by (kpromo signs and checks as one identity).
 */
async function stagingSignaturePolicy(
  flags: GoFlagValues,
  values: Record<string, ParsedValues[string]>,
  io: CliIO,
  notes: CipNotes,
): Promise<SourcePolicy | undefined> {
  const identity: Record<string, string> = {};
  for (const name of IDENTITY_FLAGS) {
    const value = flags[name];
    if (typeof value === "string" && value !== "") identity[name] = value;
  }
  // kpromo's defaults apply to a pair neither of whose flags is given.
  if (identity["certificate-identity-regexp"] === undefined) {
    identity["certificate-identity"] ??= KPROMO_DEFAULTS.certificateIdentity;
  }
  if (identity["certificate-oidc-issuer-regexp"] === undefined) {
    identity["certificate-oidc-issuer"] ??= KPROMO_DEFAULTS.certificateOidcIssuer;
  }
  const certificate = certificateIdentityOptions(identity);
  for (const name of ["certificate-identity-regexp", "certificate-oidc-issuer-regexp"] as const) {
    const pattern = identity[name];
    if (pattern !== undefined && !(pattern.startsWith("^") && pattern.endsWith("$"))) {
      notes.add(
        `--${name} must match the whole value here (cosign matches it anywhere in the value): anchor it with ^...$ to mean the same in both`,
      );
    }
  }
  if (values.keyless === true) Object.assign(values, identity);
  const trustedRoot = values["trusted-root"];
  // promote takes --trusted-root for --keyless only; here it also verifies staging.
  if (values.keyless !== true) delete values["trusted-root"];
  if (
    values["source-signature"] !== undefined ||
    values["source-policy"] !== undefined ||
    values["require-source-signature"] !== undefined
  ) {
    notes.add(
      "staging signatures are checked by the given --source-signature/--source-policy, not by kpromo's --certificate-* flags",
    );
    return undefined;
  }
  if (typeof trustedRoot !== "string") {
    notes.add(
      "staging signatures cannot be verified without --trusted-root FILE (sigstore's trusted_root.json; kpromo fetches it, the promoter never does): an image staging signed is refused, an unsigned one is promoted",
    );
    return { rules: [], default: { keys: [] }, mode: "if-present" };
  }
  const trust = await loadTrustedRoot(trustedRoot, io.cwd);
  const keyless = certificate.identity ?? {};
  return keylessSourcePolicy({
    trust,
    mode: "if-present",
    ...(keyless.subject === undefined ? {} : { certificateIdentity: keyless.subject }),
    ...(keyless.subjectRegExp === undefined ? {} : { certificateIdentityRegExp: keyless.subjectRegExp }),
    ...(keyless.issuer === undefined ? {} : { certificateOidcIssuer: keyless.issuer }),
    ...(keyless.issuerRegExp === undefined ? {} : { certificateOidcIssuerRegExp: keyless.issuerRegExp }),
  });
}

/**
 * `--snapshot REG` (what REG holds) or `--manifest-based-snapshot-of REG` (what the manifests
 * promote into REG), printed as kpromo prints them: `promoter snapshot`'s code, kpromo's bytes.
 */
async function runCipSnapshot(
  io: CliIO,
  flags: GoFlagValues,
  values: Record<string, ParsedValues[string]>,
  notes: CipNotes,
): Promise<number> {
  const output = flags.output;
  values.output = typeof output === "string" ? output.toLowerCase() : "yaml";
  if (flags["minimal-snapshot"] === true) values.minimal = true;
  const snapshotOf = flags.snapshot;
  const tag = flags["snapshot-tag"];
  let ref: string;
  if (typeof snapshotOf === "string") {
    if (flags["manifest-based-snapshot-of"] !== undefined) {
      notes.add(
        "--manifest-based-snapshot-of is not used with --snapshot (kpromo snapshots the registry then)",
      );
    }
    ref = snapshotOf;
    delete values.manifest;
    delete values["thin-manifest-dir"];
    if (typeof tag === "string") values.tag = [tag];
  } else {
    ref = String(flags["manifest-based-snapshot-of"]);
    values["from-manifests"] = true;
    if (typeof tag === "string")
      notes.add("--snapshot-tag is not used with --manifest-based-snapshot-of (kpromo ignores it there)");
  }
  notes.flush();
  // kpromo takes REG with a trailing slash as well.
  return runSnapshot(io, values, ref.replace(/\/+$/, ""), "kpromo");
}

/** Notes on kpromo flags whose meaning differs here: each printed once, before any work. */
class CipNotes {
  private readonly notes = new Set<string>();

  constructor(private readonly io: CliIO) {}

  add(note: string): void {
    this.notes.add(note);
  }

  flush(): void {
    for (const note of this.notes) writeLine(this.io.stderr, `promoter cip: note: ${note}`);
    this.notes.clear();
  }
}

async function changeScope(flags: GoFlagValues, io: CliIO, notes: CipNotes): Promise<CipScope> {
  const since = flags["manifest-diff-since"];
  if (flags["use-prow-manifest-diff"] === true) {
    if (typeof since === "string") {
      notes.add(
        "--manifest-diff-since is not used with --use-prow-manifest-diff (kpromo uses the Prow diff then)",
      );
    }
    return prowChangeScope(io.env);
  }
  if (typeof since === "string" && since !== "") {
    return timeWindowScope(parseSince(since, new Date()), since, { cwd: io.cwd, signal: io.signal });
  }
  return { kind: "full" };
}

/**
 * A Prow presubmit (or batch) runs a pull request nobody has merged yet: writing production from
 * it promotes unreviewed manifests. kpromo lets a job line do that; a `--confirm` copied into a
 * presubmit's line by mistake is refused here instead. The postsubmit writes after the merge.
 */
function refuseWritesFromPresubmit(env: NodeJS.ProcessEnv): void {
  const jobType = env.JOB_TYPE;
  if (jobType !== undefined && PRESUBMIT_JOB_TYPES.has(jobType)) {
    throw new UsageError(
      `--confirm in a Prow ${jobType} job: it runs a pull request nobody has merged, so nothing is written; promote from the postsubmit (--use-prow-manifest-diff --confirm), which runs after the merge`,
    );
  }
}

/** kpromo's logrus levels onto ours. */
function ourLogLevel(level: string): string {
  switch (level.toLowerCase()) {
    case "trace":
    case "debug":
      return "debug";
    case "info":
      return "info";
    case "warn":
    case "warning":
      return "warn";
    case "error":
    case "fatal":
    case "panic":
      return "error";
    default:
      throw new UsageError(
        `--log-level ${JSON.stringify(level)}: use trace, debug, info, warn, error, fatal or panic`,
      );
  }
}

function signingFlags(
  flags: GoFlagValues,
  values: Record<string, ParsedValues[string]>,
  notes: CipNotes,
  confirm: boolean,
): void {
  const sign = flags.sign ?? KPROMO_DEFAULTS.sign;
  const hasSigner = values["sign-key"] !== undefined || values.keyless === true;
  if (!sign) {
    if (hasSigner) notes.add("--sign=false: nothing is signed, --sign-key/--keyless are not used");
    delete values["sign-key"];
    delete values.keyless;
  } else if (confirm && !hasSigner) {
    throw new UsageError(
      "kpromo signs what it promotes by default (--sign=true) as a Google service account; here give --sign-key FILE or --keyless " +
        `(on the command line or in ${CIP_OPTIONS_VARIABLE}), or --sign=false to promote unsigned. Nothing was written.`,
    );
  }
  const account = flags["signer-account"];
  if (sign && typeof account === "string") {
    // With --keyless, sign as that account as kpromo does: its identity token from IAM
    // Credentials (promote's --signer-account). A key or a given token signs as itself.
    if (values.keyless === true && values["identity-token"] === undefined) {
      values["signer-account"] = account;
    } else if (account !== KPROMO_DEFAULTS.signerAccount) {
      notes.add(
        `--signer-account ${account} is a Google service account kpromo signs as; it is used with --keyless (and no --identity-token), here signatures are made with ${values.keyless === true ? "the given --identity-token" : "--sign-key"}`,
      );
    }
  }
}
