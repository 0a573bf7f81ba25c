import { describeError, UsageError } from "../errors.js";
import {
  ATTACHMENT_MODES,
  ATTESTATION_LAYOUTS,
  checkIdentity,
  createKeylessPolicy,
  createKeylessSigner,
  createKeySigner,
  ENV_KEY_PREFIX,
  IDENTITY_TOKEN_VARIABLE,
  loadSigningKey,
  loadSourcePolicy,
  loadTrustedRoot,
  loadVerificationKey,
  PROVENANCE_MODES,
  provenancePolicyOf,
  re2Problem,
  re2ToJavaScript,
  SIGNATURE_FORMATS,
  SignError,
  SOURCE_SIGNATURE_MODES,
  withDefaultKeys,
  withDefaultProvenance,
  type AttachmentMode,
  type AttestationLayout,
  type ImageSigner,
  type KeylessIdentity,
  type KeylessPolicy,
  type SignatureFormat,
  type SigningKey,
  type SourcePolicy,
  type SourceSignatureMode,
  type VerificationKey,
} from "../sign/index.js";
import { homedir } from "node:os";
import { ServiceAccountIdTokens, type Redactor } from "../registry/index.js";
import {
  booleanOption,
  integerOption,
  stringListOption,
  stringOption,
  type OptionSpecs,
  type ParsedValues,
} from "./command.js";
import type { CliIO } from "./io.js";

/**
 * The signing flags shared by `promote` and `verify --repair`: a key (`--sign-key FILE` or
 * `env://NAME`) or keyless signing (`--keyless` with Fulcio, Rekor, an OIDC token, and the
 * trusted root and certificate identity that recognise our earlier signatures), the identity
 * signatures name, and the layout. See docs/signing.md.
 */
export const signerOptionSpecs = {
  "sign-key": {
    type: "string",
    valueName: "FILE",
    description: "Sign with this ECDSA P-256 private key (PEM; or env://NAME for a variable)",
  },
  "sign-identity": {
    type: "string",
    valueName: "REF",
    description:
      "Canonical registry the signatures name, e.g. registry.example.io/project (default: the first destination)",
  },
  "signature-format": {
    type: "string",
    valueName: "FORMAT",
    description: "cosign (.sig tags, default) or bundle (sigstore bundle as an OCI referrer)",
  },
  "sign-index-only": { type: "boolean", description: "Sign an index but not its images" },
  keyless: {
    type: "boolean",
    description: "Sign keyless: Fulcio certificate from an OIDC token, Rekor entry",
  },
  "fulcio-url": {
    type: "string",
    valueName: "URL",
    description: "Fulcio for --keyless (default https://fulcio.sigstore.dev)",
  },
  "rekor-url": {
    type: "string",
    valueName: "URL",
    description: "Rekor for --keyless (default https://rekor.sigstore.dev); with --sign-key, also log there",
  },
  "identity-token": {
    type: "string",
    valueName: "FILE",
    description: `OIDC token for --keyless: a file, or env://NAME (default env://${IDENTITY_TOKEN_VARIABLE})`,
  },
  "signer-account": {
    type: "string",
    valueName: "EMAIL",
    description:
      "For --keyless: sign as this Google service account, its identity token obtained by impersonating it with the Application Default Credentials (kpromo's flag)",
  },
  "iam-credentials-url": {
    type: "string",
    valueName: "URL",
    description:
      "For --signer-account: the IAM Credentials API (default https://iamcredentials.googleapis.com; a private endpoint)",
  },
  "trusted-root": {
    type: "string",
    valueName: "FILE",
    description:
      "For --keyless: sigstore trusted_root.json of that Fulcio and Rekor (to recognise our signatures)",
  },
  "certificate-identity": {
    type: "string",
    valueName: "ID",
    description: "For --keyless: the identity (email, workflow URI) our Fulcio certificates name",
  },
  "certificate-identity-regexp": {
    type: "string",
    valueName: "RE",
    description:
      "For --keyless: instead of --certificate-identity, an RE2 expression the whole identity matches",
  },
  "certificate-oidc-issuer": {
    type: "string",
    valueName: "URL",
    description: "For --keyless: the OIDC issuer our Fulcio certificates name",
  },
  "certificate-oidc-issuer-regexp": {
    type: "string",
    valueName: "RE",
    description:
      "For --keyless: instead of --certificate-oidc-issuer, an RE2 expression the whole issuer matches",
  },
} as const satisfies OptionSpecs;

export const promoteSignatureOptionSpecs = {
  ...signerOptionSpecs,
  attachments: {
    type: "string",
    valueName: "MODE",
    description: "Carry staging's .sig/.att/.sbom and referrers: copied (default), all or none",
  },
  "source-signature": {
    type: "string",
    valueName: "MODE",
    description:
      "required (refuse edges without a valid staging signature) or if-present (refuse signatures or attestations present that do not verify)",
  },
  "require-source-signature": {
    type: "boolean",
    description: "The same as --source-signature required",
  },
  "source-public-key": {
    type: "string",
    multiple: true,
    valueName: "FILE",
    description: "A trusted public key for --source-signature (repeatable)",
  },
  "source-policy": {
    type: "string",
    valueName: "FILE",
    description: "Signature policy per registry or project, with keyless identities (docs/signing.md)",
  },
  "source-provenance": {
    type: "string",
    valueName: "MODE",
    description:
      "Staging's SLSA build provenance, for the default rule: if-present (default: verify what is there), required, or ignore",
  },
  "source-builder-id": {
    type: "string",
    valueName: "ID",
    description: "The builder id staging's provenance must name (default rule)",
  },
  "source-builder-id-regexp": {
    type: "string",
    valueName: "RE",
    description: "Instead of --source-builder-id, an RE2 expression the whole builder id matches",
  },
  "source-repository": {
    type: "string",
    multiple: true,
    valueName: "URL",
    description:
      "A source repository staging's provenance may name, e.g. https://github.com/org/repo (repeatable)",
  },
  "source-build-level": {
    type: "string",
    valueName: "N",
    description:
      "The SLSA build level (1-3) you vouch the expected builder meets, claimed for verified provenance",
  },
  "max-signature-ops": {
    type: "string",
    valueName: "N",
    description: "Promoted digests whose signatures and attachments are made and written at once (default 8)",
  },
  "no-attestations": {
    type: "boolean",
    description: "Sign without writing the promotion attestation and VSA (written by default when signing)",
  },
  "attestation-layout": {
    type: "string",
    valueName: "LAYOUT",
    description:
      "Where the attestations go: referrer (sigstore bundle referrer, default), cosign (.att tag) or both",
  },
} as const satisfies OptionSpecs;

export const DEFAULT_FULCIO_URL = "https://fulcio.sigstore.dev";
export const DEFAULT_REKOR_URL = "https://rekor.sigstore.dev";

/** The signer the flags ask for, or undefined when they ask for none. */
export async function signerFromOptions(values: ParsedValues, io: CliIO): Promise<ImageSigner | undefined> {
  const keyFile = stringOption(values, "sign-key");
  const keyless = booleanOption(values, "keyless");
  const fulcio = stringOption(values, "fulcio-url");
  const rekor = stringOption(values, "rekor-url");
  const token = stringOption(values, "identity-token");
  const signerAccount = stringOption(values, "signer-account");
  const iamCredentialsUrl = stringOption(values, "iam-credentials-url");
  const trustedRoot = stringOption(values, "trusted-root");
  const certificate = certificateIdentityOptions(values);
  if (keyFile !== undefined && keyless) throw new UsageError("give either --sign-key or --keyless, not both");
  if (
    !keyless &&
    ([fulcio, token, signerAccount, trustedRoot].some((value) => value !== undefined) || certificate.given)
  ) {
    throw new UsageError(
      "--fulcio-url, --identity-token, --signer-account, --trusted-root, --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp] are for --keyless",
    );
  }
  if (token !== undefined && signerAccount !== undefined) {
    throw new UsageError("give either --identity-token or --signer-account, not both");
  }
  if (iamCredentialsUrl !== undefined && signerAccount === undefined) {
    throw new UsageError("--iam-credentials-url is for --signer-account");
  }
  if (signerAccount !== undefined) checkServiceAccount(signerAccount);
  if (iamCredentialsUrl !== undefined) checkIamCredentialsUrl(iamCredentialsUrl);
  const format = stringOption(values, "signature-format", SIGNATURE_FORMATS);
  const identity = stringOption(values, "sign-identity");
  if (keyFile === undefined && !keyless) {
    if (
      identity !== undefined ||
      format !== undefined ||
      booleanOption(values, "sign-index-only") ||
      rekor !== undefined
    ) {
      throw new UsageError(
        "--sign-identity, --signature-format, --sign-index-only and --rekor-url need --sign-key or --keyless",
      );
    }
    return undefined;
  }
  if (identity !== undefined) checkIdentity(identity);
  if (keyFile !== undefined) {
    const key = await loadSigningKey(keyFile, { env: io.env, cwd: io.cwd, signal: io.signal });
    if (io.secrets) addSigningKeySecrets(io.secrets, key, keyFile, io.env);
    return createKeySigner(key, rekor === undefined ? {} : { rekorUrl: rekor });
  }
  // A keyless signature is ours only when it fully verifies as made by our identity (a layer in
  // staging or at a mirror may be anyone's): without these every run would sign again.
  if (trustedRoot === undefined || !certificate.identity) {
    throw new UsageError(
      "--keyless needs --trusted-root FILE, --certificate-identity ID and --certificate-oidc-issuer URL (or their -regexp forms): they say which keyless signatures are ours (docs/signing.md)",
    );
  }
  const trust = await loadTrustedRoot(
    trustedRoot,
    io.cwd,
    (reason) => new SignError("sign-policy", `cannot read --trusted-root ${trustedRoot}: ${reason}`),
  );
  return createKeylessSigner({
    fulcioUrl: fulcio ?? DEFAULT_FULCIO_URL,
    rekorUrl: rekor ?? DEFAULT_REKOR_URL,
    identityToken:
      signerAccount === undefined
        ? (token ?? `env://${IDENTITY_TOKEN_VARIABLE}`)
        : serviceAccountTokens(signerAccount, iamCredentialsUrl, io),
    env: io.env,
    cwd: io.cwd,
    ownIdentity: createKeylessPolicy([certificate.identity], trust),
  });
}

/** A service account's email, as IAM names them (`name@project.iam.gserviceaccount.com`). */
function checkServiceAccount(account: string): void {
  if (!/^[a-z0-9][a-z0-9._-]*@[a-z0-9][a-z0-9.-]*\.[a-z]+$/.test(account)) {
    throw new UsageError(
      `--signer-account must be a service account's email, not ${JSON.stringify(account)}`,
    );
  }
}

/** The IAM Credentials endpoint: https, or plain http only on loopback (a stand-in). */
function checkIamCredentialsUrl(text: string): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--iam-credentials-url ${JSON.stringify(text)} is not a URL`);
  }
  const loopback = /^(127\.|localhost$|\[::1\]$)/.test(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    throw new UsageError("--iam-credentials-url must be https (plain http only on loopback)");
  }
  if (url.username !== "" || url.password !== "" || url.search !== "" || !/^\/*$/.test(url.pathname)) {
    throw new UsageError("--iam-credentials-url is the API's origin, without a path, query or user");
  }
}

/**
 * Identity tokens of `--signer-account` (audience `sigstore`, with its email), obtained by
 * impersonating it with the Application Default Credentials, as kpromo's `--signer-account`.
 * Each token joins the run's secrets.
 */
function serviceAccountTokens(account: string, iamCredentialsUrl: string | undefined, io: CliIO) {
  const tokens = new ServiceAccountIdTokens({
    env: io.env,
    homeDirectory: io.env.HOME ?? homedir(),
    serviceAccount: account,
    ...(iamCredentialsUrl === undefined ? {} : { iamCredentialsUrl }),
  });
  return {
    description: `service account ${account} (impersonated through IAM Credentials)`,
    token: async () => {
      const token = await tokens.token();
      io.secrets?.add(token);
      return token;
    },
  };
}

/**
 * `--certificate-identity[-regexp]` and `--certificate-oidc-issuer[-regexp]` (cosign's flags):
 * one of each pair; an expression is RE2 syntax (as cosign takes it) matching the whole value,
 * refused when JavaScript would read it otherwise. `identity` is set when both halves are given.
 */
export function certificateIdentityOptions(values: ParsedValues): {
  readonly given: boolean;
  readonly identity?: KeylessIdentity;
} {
  const pair = (exact: string, regexp: string) => {
    const value = stringOption(values, exact);
    const pattern = stringOption(values, regexp);
    if (value !== undefined && pattern !== undefined) {
      throw new UsageError(`give --${exact} or --${regexp}, not both`);
    }
    if (pattern !== undefined) checkRegExpOption(regexp, pattern);
    return { value, pattern };
  };
  const subject = pair("certificate-identity", "certificate-identity-regexp");
  const issuer = pair("certificate-oidc-issuer", "certificate-oidc-issuer-regexp");
  const given = [subject.value, subject.pattern, issuer.value, issuer.pattern].some((v) => v !== undefined);
  if ((subject.value ?? subject.pattern) === undefined || (issuer.value ?? issuer.pattern) === undefined) {
    return { given };
  }
  return {
    given,
    identity: {
      ...(subject.value === undefined ? {} : { subject: subject.value }),
      ...(subject.pattern === undefined ? {} : { subjectRegExp: subject.pattern }),
      ...(issuer.value === undefined ? {} : { issuer: issuer.value }),
      ...(issuer.pattern === undefined ? {} : { issuerRegExp: issuer.pattern }),
    },
  };
}

/** Refuses an RE2 expression flag that JavaScript would read otherwise, or that does not compile. */
function checkRegExpOption(name: string, pattern: string): void {
  const problem = re2Problem(pattern);
  if (problem !== undefined) throw new UsageError(`--${name}: not portable RE2 syntax: ${problem}`);
  try {
    new RegExp(re2ToJavaScript(pattern));
  } catch (error) {
    throw new UsageError(`--${name}: invalid regular expression: ${describeError(error)}`);
  }
}

/** Base64 lines of a PEM file: 64 characters (RFC 7468 section 2). */
const PEM_LINE_LENGTH = 64;
/** Shorter lines of a key variable (a PEM's last line) are too common to search for. */
const MIN_KEY_LINE_LENGTH = 16;

/**
 * Registers a signing key's material with the run's secrets: the private key as a key file holds
 * it (PKCS#8 and SEC1 DER in base64, whole and as PEM lines) and, for `env://NAME`, the
 * variable's text and its base64 lines. Its password is registered from the environment with the
 * run (output-sink.ts).
 */
export function addSigningKeySecrets(
  secrets: Redactor,
  key: SigningKey,
  keyFile: string,
  env: Readonly<Record<string, string | undefined>>,
): void {
  for (const type of ["pkcs8", "sec1"] as const) {
    const base64 = key.privateKey.export({ type, format: "der" }).toString("base64");
    secrets.add(base64);
    for (let at = 0; at < base64.length; at += PEM_LINE_LENGTH) {
      secrets.add(base64.slice(at, at + PEM_LINE_LENGTH));
    }
  }
  const variable = keyFile.startsWith(ENV_KEY_PREFIX) ? env[keyFile.slice(ENV_KEY_PREFIX.length)] : undefined;
  if (variable === undefined) return;
  secrets.add(variable.trim());
  for (const line of variable.split(/\r?\n/).map((text) => text.trim())) {
    if (line.length >= MIN_KEY_LINE_LENGTH && /^[A-Za-z0-9+/=]+$/.test(line)) secrets.add(line);
  }
}

export function signatureFormatOption(values: ParsedValues): SignatureFormat {
  return stringOption(values, "signature-format", SIGNATURE_FORMATS) ?? "cosign";
}

/**
 * Where the run's attestations go, or undefined when it writes none (`--no-attestations`).
 * Giving a layout and opting out is a contradiction, refused.
 */
export function attestationLayoutOption(values: ParsedValues): AttestationLayout | undefined {
  const layout = stringOption(values, "attestation-layout", ATTESTATION_LAYOUTS);
  if (booleanOption(values, "no-attestations")) {
    if (layout !== undefined) {
      throw new UsageError("--attestation-layout and --no-attestations contradict each other: give one");
    }
    return undefined;
  }
  return layout ?? "referrer";
}

export function attachmentModeOption(values: ParsedValues): AttachmentMode {
  return stringOption(values, "attachments", ATTACHMENT_MODES) ?? "copied";
}

/**
 * The source policy of `--source-signature required|if-present` (or `--require-source-signature`,
 * the same as `required`) with keys and/or a policy file.
 */
export async function sourcePolicyFromOptions(
  values: ParsedValues,
  io: CliIO,
): Promise<SourcePolicy | undefined> {
  const required = booleanOption(values, "require-source-signature");
  const chosen = stringOption(values, "source-signature", SOURCE_SIGNATURE_MODES);
  if (required && chosen !== undefined && chosen !== "required") {
    throw new UsageError(`--require-source-signature contradicts --source-signature ${chosen}`);
  }
  const mode: SourceSignatureMode | undefined = chosen ?? (required ? "required" : undefined);
  const keyFiles = stringListOption(values, "source-public-key");
  const policyFile = stringOption(values, "source-policy");
  const provenance = provenanceOptions(values);
  if (mode === undefined) {
    if (keyFiles.length > 0 || policyFile !== undefined || provenance !== undefined) {
      throw new UsageError(
        "--source-public-key, --source-policy and --source-provenance/--source-builder-id[-regexp]/--source-repository/--source-build-level take effect with --source-signature required|if-present",
      );
    }
    return undefined;
  }
  if (keyFiles.length === 0 && policyFile === undefined) {
    throw new UsageError(`--source-signature ${mode} needs --source-public-key FILE or --source-policy FILE`);
  }
  const keys = await Promise.all(
    keyFiles.map((file) => loadVerificationKey(file, { env: io.env, cwd: io.cwd })),
  );
  const policy =
    policyFile === undefined ? undefined : await loadSourcePolicy(policyFile, { cwd: io.cwd, env: io.env });
  const withKeys = withDefaultKeys(policy, keys);
  if (provenance !== undefined && !withKeys.default) {
    throw new UsageError(
      "the --source-provenance flags apply to the default rule: give --source-public-key, or a default rule in --source-policy",
    );
  }
  return { ...(provenance ? withDefaultProvenance(withKeys, provenance) : withKeys), mode };
}

/**
 * The default rule's provenance expectations from `--source-provenance`, `--source-builder-id`
 * or `--source-builder-id-regexp`, `--source-repository` and `--source-build-level` (the policy
 * file's `provenance`, `builderId`, `builderIdRegExp`, `sourceRepository`, `buildLevel`);
 * undefined when none is given.
 */
function provenanceOptions(values: ParsedValues) {
  const mode = stringOption(values, "source-provenance", PROVENANCE_MODES);
  const builderId = stringOption(values, "source-builder-id");
  const builderIdRegExp = stringOption(values, "source-builder-id-regexp");
  const repositories = stringListOption(values, "source-repository");
  const buildLevel = integerOption(values, "source-build-level", 1, 3);
  if (builderId !== undefined && builderIdRegExp !== undefined) {
    throw new UsageError("give --source-builder-id or --source-builder-id-regexp, not both");
  }
  if (builderIdRegExp !== undefined) checkRegExpOption("source-builder-id-regexp", builderIdRegExp);
  const expectations = builderId ?? builderIdRegExp ?? repositories[0] ?? buildLevel;
  if (mode === "ignore" && expectations !== undefined) {
    throw new UsageError(
      "--source-builder-id[-regexp], --source-repository and --source-build-level have no effect with --source-provenance ignore",
    );
  }
  if (buildLevel !== undefined && buildLevel > 1 && (builderId ?? builderIdRegExp) === undefined) {
    throw new UsageError(
      `--source-build-level ${buildLevel} needs --source-builder-id or --source-builder-id-regexp (the level is the builder's)`,
    );
  }
  return provenancePolicyOf(
    {
      provenance: mode,
      builderId,
      builderIdRegExp,
      sourceRepository: repositories.length > 0 ? repositories : undefined,
      buildLevel,
    },
    "--source-provenance",
  );
}

/** Whose signatures and attestations count, for the commands that check them (verify, explain). */
export const trustedSignerOptionSpecs = {
  "public-key": {
    type: "string",
    multiple: true,
    valueName: "FILE",
    description: "A trusted ECDSA P-256 public key (PEM), repeatable; env://NAME for a variable",
  },
  policy: {
    type: "string",
    valueName: "FILE",
    description: "A signature policy file: its default rule's keys and keyless identities count",
  },
} as const satisfies OptionSpecs;

/**
 * Whose signatures and attestations count: the `--public-key` keys and the `--policy` file's
 * default rule (keys and keyless identities). One of the two is required.
 */
export async function trustedSigners(
  values: ParsedValues,
  io: CliIO,
): Promise<{ keys: VerificationKey[]; keyless?: KeylessPolicy }> {
  const keyFiles = stringListOption(values, "public-key");
  const policyFile = stringOption(values, "policy");
  if (keyFiles.length === 0 && policyFile === undefined) {
    throw new UsageError("give --public-key FILE (or --policy FILE) to say whose signatures count");
  }
  const keys: VerificationKey[] = await Promise.all(
    keyFiles.map((file) => loadVerificationKey(file, { env: io.env, cwd: io.cwd, signal: io.signal })),
  );
  const policy =
    policyFile === undefined ? undefined : await loadSourcePolicy(policyFile, { cwd: io.cwd, env: io.env });
  keys.push(...(policy?.default?.keys ?? []));
  const keyless = policy?.default?.keyless;
  return { keys, ...(keyless ? { keyless } : {}) };
}
