import { isJsonObject } from "../json-shape.js";
import { createHash, createPublicKey } from "node:crypto";
import { open } from "node:fs/promises";
import * as path from "node:path";
import type { Bundle, SerializedBundle } from "@sigstore/bundle";
import type * as SigstoreVerifyModule from "@sigstore/verify";
import type { TrustMaterial, Verifier } from "@sigstore/verify";
import { describeError } from "../errors.js";
import type { Descriptor } from "../oci/index.js";
import { checkSigningStatement, type StatementKind } from "./bundle-format.js";
import type { DsseEnvelope } from "./dsse.js";
import { checkSimpleSigningClaims, CosignAnnotation, type ClaimsExpectation } from "./cosign-format.js";
import { SignError } from "./errors.js";

/**
 * Accepting keyless (Fulcio certificate) signatures in cosign's tag layout: the certificate must
 * chain to a trusted Fulcio root, the Rekor inclusion promise in `dev.sigstore.cosign/bundle`
 * must verify with a trusted log key (its time proves the short-lived certificate was valid),
 * the signature must verify with the certificate's key, and the certificate's identity (subject
 * alternative name) and OIDC issuer must match one of the policy's identities, exactly or by
 * regular expression. Verification is `@sigstore/verify`'s; trust comes from a sigstore
 * `trusted_root.json` (https://github.com/sigstore/protobuf-specs, TrustedRoot).
 */

export interface KeylessIdentity {
  /** The certificate's subject alternative name (an email, a workflow URI), exact. */
  readonly subject?: string;
  /** ... or a regular expression it must match whole. */
  readonly subjectRegExp?: string;
  /** The OIDC issuer, exact. */
  readonly issuer?: string;
  /** ... or a regular expression it must match whole. */
  readonly issuerRegExp?: string;
}

export type KeylessVerdict =
  { readonly ok: true; readonly signer: string } | { readonly ok: false; readonly reason: string };

export interface KeylessPolicy {
  readonly identities: readonly KeylessIdentity[];
  /** A keyless layer of cosign's tag layout over `payload` (the layer's blob, already read). */
  verifyLayer(
    layer: Descriptor,
    payload: Uint8Array,
    expectation: ClaimsExpectation,
  ): Promise<KeylessVerdict>;
  /**
   * A sigstore bundle of the bundle layout (a DSSE envelope over cosign's signing statement, or
   * with `kind: "attestation"` any in-toto statement) signed with a Fulcio certificate: the same
   * checks, then the statement names the digest (and the identity).
   */
  verifyBundle(
    bundleBytes: Uint8Array,
    expectation: ClaimsExpectation,
    kind?: StatementKind,
  ): Promise<KeylessVerdict>;
  /**
   * A keyless layer of cosign's `.att` manifest (the DSSE envelope, already read and parsed):
   * the same checks, then its in-toto statement names the digest.
   */
  verifyAttestationLayer(
    layer: Descriptor,
    envelope: DsseEnvelope,
    expectation: ClaimsExpectation,
  ): Promise<KeylessVerdict>;
}

/** A sigstore trusted_root.json larger than this is not one (public-good's is about 10 KiB). */
export const MAX_TRUSTED_ROOT_BYTES = 1024 * 1024;

/**
 * Why JavaScript would not read `pattern` as Go's RE2 does (the syntax cosign's `-regexp` flags
 * take: https://golang.org/s/re2syntax), or undefined. Both engines agree on the common subset
 * (literals, classes, groups, alternation, the usual quantifiers and escapes); what one of them
 * lacks or reads otherwise is refused rather than guessed: lookaround and backreferences (RE2
 * has none), inline flags, POSIX and `\p` classes, `\A` `\z` `\Q` `\C` and other letter
 * escapes, octal and `\x{...}` escapes. Go's named group `(?P<name>...)` is accepted (see
 * {@link re2ToJavaScript}).
 */
export function re2Problem(pattern: string): string | undefined {
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i];
    if (char === "\\") {
      const next = pattern[i + 1];
      if (next === undefined) return "a trailing backslash";
      i += 1;
      if (/[0-9]/.test(next)) return `\\${next} (a backreference or octal escape; RE2 and JavaScript differ)`;
      if (next === "x" && pattern[i + 1] === "{") return "\\x{...} (write \\xHH)";
      if (/[a-zA-Z]/.test(next) && !"dDwWsSbBnrtfvx".includes(next)) {
        return `\\${next} (RE2 and JavaScript read it differently)`;
      }
      if (inClass && (next === "b" || next === "B" || next === "S")) return `\\${next} inside a class`;
      continue;
    }
    if (inClass) {
      if (char === "[" && pattern[i + 1] === ":") return "a POSIX class [:...:]";
      if (char === "]") inClass = false;
      continue;
    }
    if (char === "[") {
      inClass = true;
      if (pattern[i + 1] === "^") i += 1;
      // RE2 reads a `]` first in a class as a literal; JavaScript as the end of an empty class.
      if (pattern[i + 1] === "]") return "a ] first in a class (write \\])";
      continue;
    }
    if (char === "(" && pattern[i + 1] === "?") {
      const rest = pattern.slice(i + 2);
      if (rest.startsWith(":") || rest.startsWith("P<")) continue;
      if (/^<[A-Za-z_]/.test(rest)) continue;
      if (/^(=|!|<=|<!)/.test(rest)) return "lookahead or lookbehind (RE2 has none)";
      return "an inline flag group (?...) (write the pattern without flags)";
    }
  }
  return undefined;
}

const RE2_SPACE = "\\t\\n\\f\\r ";

/** `pattern` (RE2 syntax, checked by {@link re2Problem}) as JavaScript source: `(?P<` is `(?<`. */
export function re2ToJavaScript(pattern: string): string {
  let out = "";
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i] ?? "";
    if (char === "\\") {
      const escape = pattern.slice(i, i + 2);
      i += 1;
      // RE2's \s is [\t\n\f\r ]; JavaScript's also matches \v and Unicode spaces.
      if (escape === "\\s") out += inClass ? RE2_SPACE : `[${RE2_SPACE}]`;
      else if (escape === "\\S") out += `[^${RE2_SPACE}]`;
      else out += escape;
      continue;
    }
    if (inClass) {
      if (char === "]") inClass = false;
      out += char;
      continue;
    }
    if (char === "[") {
      inClass = true;
      out += char;
      if (pattern[i + 1] === "^") out += pattern[++i] ?? "";
      continue;
    }
    if (pattern.startsWith("(?P<", i)) {
      out += "(?<";
      i += 3;
      continue;
    }
    out += char;
  }
  return out;
}

const compiled = new Map<string, RegExp>();

/** Whether `value` matches `pattern` (RE2 syntax, checked by {@link checkRe2Pattern}) as a whole. */
export function wholeMatch(pattern: string, value: string): boolean {
  let expression = compiled.get(pattern);
  if (!expression) {
    expression = new RegExp(`^(?:${re2ToJavaScript(pattern)})$`);
    compiled.set(pattern, expression);
  }
  return expression.test(value);
}

export function identityMatches(
  identity: KeylessIdentity,
  subject: string | undefined,
  issuer: string | undefined,
): boolean {
  if (subject === undefined || issuer === undefined) return false;
  if (identity.subject !== undefined && identity.subject !== subject) return false;
  if (identity.subjectRegExp !== undefined && !wholeMatch(identity.subjectRegExp, subject)) return false;
  if (identity.issuer !== undefined && identity.issuer !== issuer) return false;
  if (identity.issuerRegExp !== undefined && !wholeMatch(identity.issuerRegExp, issuer)) return false;
  return true;
}

/** Checks a policy identity: it names a subject and an issuer, and its expressions compile. */
export function checkKeylessIdentity(identity: KeylessIdentity, where: string): void {
  if (identity.subject === undefined && identity.subjectRegExp === undefined) {
    throw new SignError("sign-policy", `${where}: a keyless identity needs subject or subjectRegExp`);
  }
  if (identity.issuer === undefined && identity.issuerRegExp === undefined) {
    throw new SignError("sign-policy", `${where}: a keyless identity needs issuer or issuerRegExp`);
  }
  for (const pattern of [identity.subjectRegExp, identity.issuerRegExp]) {
    if (pattern !== undefined) checkRe2Pattern(pattern, where);
  }
}

/**
 * Throws `SignError` (`sign-policy`) unless `pattern` is RE2 syntax JavaScript reads the same
 * way (see {@link re2Problem}) and compiles.
 */
export function checkRe2Pattern(pattern: string, where: string): void {
  const problem = re2Problem(pattern);
  if (problem !== undefined) {
    throw new SignError(
      "sign-policy",
      `${where}: regular expression ${JSON.stringify(pattern)} is not portable RE2 syntax: ${problem}`,
    );
  }
  try {
    new RegExp(re2ToJavaScript(pattern));
  } catch (error) {
    throw new SignError(
      "sign-policy",
      `${where}: invalid regular expression ${JSON.stringify(pattern)}: ${describeError(error)}`,
    );
  }
}

function pemToDer(pem: string): Buffer[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)].map((match) =>
    Buffer.from((match[1] ?? "").replace(/\s+/g, ""), "base64"),
  );
}

interface RekorAnnotation {
  SignedEntryTimestamp?: unknown;
  Payload?: { body?: unknown; integratedTime?: unknown; logIndex?: unknown; logID?: unknown };
}

/**
 * The verification material of a keyless cosign layer: its certificate (and chain) and the Rekor
 * entry with its inclusion promise, as a sigstore bundle holds them; a reason string when the
 * layer lacks a part.
 */
function verificationMaterialOfCosignLayer(layer: Descriptor): unknown {
  const annotations = layer.annotations ?? {};
  const certificates = pemToDer(
    `${annotations[CosignAnnotation.certificate] ?? ""}${annotations[CosignAnnotation.chain] ?? ""}`,
  );
  if (certificates.length === 0) return "no certificate";
  let rekor: RekorAnnotation;
  try {
    rekor = JSON.parse(annotations[CosignAnnotation.bundle] ?? "") as RekorAnnotation;
  } catch {
    return "no Rekor bundle annotation (a keyless signature needs its transparency log entry)";
  }
  const entry = rekor.Payload;
  if (
    typeof rekor.SignedEntryTimestamp !== "string" ||
    typeof entry?.body !== "string" ||
    typeof entry.integratedTime !== "number" ||
    typeof entry.logIndex !== "number" ||
    typeof entry.logID !== "string"
  ) {
    return "the Rekor bundle annotation is incomplete";
  }
  const body = Buffer.from(entry.body, "base64");
  let kind: { kind?: unknown; apiVersion?: unknown };
  try {
    const parsed: unknown = JSON.parse(body.toString("utf8"));
    kind = isJsonObject(parsed) ? parsed : {};
  } catch {
    return "the Rekor entry body is not JSON";
  }
  return {
    content: {
      $case: "x509CertificateChain",
      x509CertificateChain: { certificates: certificates.map((rawBytes) => ({ rawBytes })) },
    },
    tlogEntries: [
      {
        logIndex: String(entry.logIndex),
        logId: { keyId: Buffer.from(entry.logID, "hex") },
        kindVersion: { kind: String(kind.kind), version: String(kind.apiVersion) },
        integratedTime: String(entry.integratedTime),
        inclusionPromise: { signedEntryTimestamp: Buffer.from(rekor.SignedEntryTimestamp, "base64") },
        inclusionProof: undefined,
        canonicalizedBody: body,
      },
    ],
    timestampVerificationData: undefined,
  };
}

/**
 * The sigstore bundle equivalent to a keyless cosign layer: message signature over the payload,
 * the certificate (and chain), and the Rekor entry with its inclusion promise. The reverse of
 * `cosignAnnotationsFromBundle` (signer.ts); a reason string when the layer lacks a part.
 */
export function bundleOfCosignLayer(layer: Descriptor, payload: Uint8Array): Bundle | string {
  const signature = layer.annotations?.[CosignAnnotation.signature];
  if (!signature) return "no signature annotation";
  const verificationMaterial = verificationMaterialOfCosignLayer(layer);
  if (typeof verificationMaterial === "string") return verificationMaterial;
  const bundle: unknown = {
    mediaType: "application/vnd.dev.sigstore.bundle+json;version=0.1",
    verificationMaterial,
    content: {
      $case: "messageSignature",
      messageSignature: {
        // HashAlgorithm.SHA2_256 in sigstore's protobuf specs.
        messageDigest: { algorithm: 1, digest: createHash("sha256").update(payload).digest() },
        signature: Buffer.from(signature, "base64"),
      },
    },
  };
  return bundle as Bundle;
}

/**
 * The sigstore bundle equivalent to a keyless layer of cosign's `.att` manifest: the layer's blob
 * is a DSSE envelope (cosign leaves the signature annotation empty), with the certificate and
 * Rekor entry in the annotations as for a signature.
 */
export function bundleOfCosignAttestationLayer(layer: Descriptor, envelope: DsseEnvelope): Bundle | string {
  const verificationMaterial = verificationMaterialOfCosignLayer(layer);
  if (typeof verificationMaterial === "string") return verificationMaterial;
  const bundle: unknown = {
    mediaType: "application/vnd.dev.sigstore.bundle+json;version=0.1",
    verificationMaterial,
    content: {
      $case: "dsseEnvelope",
      dsseEnvelope: {
        payload: envelope.payload,
        payloadType: envelope.payloadType,
        signatures: envelope.signatures.map((entry) => ({ keyid: entry.keyid, sig: entry.sig })),
      },
    },
  };
  return bundle as Bundle;
}

export function createKeylessPolicy(
  identities: readonly KeylessIdentity[],
  trust: TrustMaterial,
): KeylessPolicy {
  // sigstore-js is loaded when the first keyless signature is checked (see signer.ts).
  let verifier: Promise<{ verifier: Verifier; verify: typeof SigstoreVerifyModule }> | undefined;
  const loadVerifier = () =>
    (verifier ??= import("@sigstore/verify").then((verify) => ({
      verify,
      verifier: new verify.Verifier(trust, { tlogThreshold: 1, ctlogThreshold: 0, timestampThreshold: 1 }),
    })));
  /**
   * Certificate chain to a trusted Fulcio CA, Rekor entry with a trusted log key, signature with
   * the certificate's key, then the certificate's identity and issuer against the policy.
   */
  const verifySigned = async (bundle: Bundle, artifact: Buffer | undefined): Promise<KeylessVerdict> => {
    const { verify, verifier: loaded } = await loadVerifier();
    let subject: string | undefined;
    let issuer: string | undefined;
    try {
      const signer = loaded.verify(verify.toSignedEntity(bundle, artifact));
      subject = signer.identity?.subjectAlternativeName;
      issuer = signer.identity?.extensions?.issuer;
    } catch (error) {
      return {
        ok: false,
        reason: `keyless signature does not verify: ${describeError(error)}`,
      };
    }
    if (!identities.some((identity) => identityMatches(identity, subject, issuer))) {
      return {
        ok: false,
        reason: `signed by ${subject ?? "(no subject)"} from ${issuer ?? "(no issuer)"}, which the policy does not accept`,
      };
    }
    return { ok: true, signer: `${subject ?? "?"} (${issuer ?? "?"})` };
  };
  return {
    identities,
    async verifyBundle(bundleBytes, expectation, kind = "signing") {
      let bundle: Bundle;
      try {
        const { bundleFromJSON } = await import("@sigstore/bundle");
        bundle = bundleFromJSON(JSON.parse(new TextDecoder().decode(bundleBytes)) as SerializedBundle);
      } catch (error) {
        return { ok: false, reason: `not a sigstore bundle: ${describeError(error)}` };
      }
      if (bundle.content.$case !== "dsseEnvelope") {
        return { ok: false, reason: "the bundle holds no DSSE envelope" };
      }
      const material = bundle.verificationMaterial.content.$case;
      if (material !== "certificate" && material !== "x509CertificateChain") {
        return { ok: false, reason: "the bundle is not signed with a certificate" };
      }
      const signed = await verifySigned(bundle, undefined);
      if (!signed.ok) return signed;
      const statement = checkSigningStatement(bundle.content.dsseEnvelope.payload, expectation, kind);
      return statement.ok ? signed : statement;
    },
    async verifyAttestationLayer(layer, envelope, expectation) {
      const bundle = bundleOfCosignAttestationLayer(layer, envelope);
      if (typeof bundle === "string") return { ok: false, reason: bundle };
      const signed = await verifySigned(bundle, undefined);
      if (!signed.ok) return signed;
      const statement = checkSigningStatement(envelope.payload, expectation, "attestation");
      return statement.ok ? signed : statement;
    },
    async verifyLayer(layer, payload, expectation) {
      const bundle = bundleOfCosignLayer(layer, payload);
      if (typeof bundle === "string") return { ok: false, reason: bundle };
      const signed = await verifySigned(bundle, Buffer.from(payload));
      if (!signed.ok) return signed;
      const checked = checkSimpleSigningClaims(payload, expectation);
      return checked.ok ? signed : checked;
    },
  };
}

interface TrustedRootJson {
  tlogs?: {
    baseUrl?: string;
    publicKey?: { rawBytes?: string; validFor?: { start?: string; end?: string } };
    logId?: { keyId?: string };
  }[];
  certificateAuthorities?: {
    certChain?: { certificates?: { rawBytes?: string }[] };
    validFor?: { start?: string; end?: string };
  }[];
  ctlogs?: TrustedRootJson["tlogs"];
  timestampAuthorities?: TrustedRootJson["certificateAuthorities"];
}

function validity(range: { start?: string; end?: string } | undefined): { start: Date; end: Date } {
  return {
    start: range?.start ? new Date(range.start) : new Date(0),
    end: range?.end ? new Date(range.end) : new Date(8640000000000000),
  };
}

/**
 * Trust material from a sigstore `trusted_root.json` (public-good's, or a private deployment's):
 * Fulcio CA chains, Rekor and CT log keys, timestamp authorities.
 */
export async function trustMaterialFromTrustedRoot(json: unknown, where: string): Promise<TrustMaterial> {
  if (!isJsonObject(json)) throw new SignError("sign-policy", `${where}: not a trusted root`);
  const { X509Certificate } = await import("@sigstore/core");
  const root = json as TrustedRootJson;
  try {
    const logs = (entries: TrustedRootJson["tlogs"]) =>
      (entries ?? []).map((log) => ({
        logID: Buffer.from(log.logId?.keyId ?? "", "base64"),
        baseURL: log.baseUrl ?? "",
        publicKey: createPublicKey({
          key: Buffer.from(log.publicKey?.rawBytes ?? "", "base64"),
          format: "der",
          type: "spki",
        }),
        validFor: validity(log.publicKey?.validFor),
      }));
    const authorities = (entries: TrustedRootJson["certificateAuthorities"]) =>
      (entries ?? []).map((authority) => ({
        certChain: (authority.certChain?.certificates ?? []).map((cert) =>
          X509Certificate.parse(Buffer.from(cert.rawBytes ?? "", "base64")),
        ),
        validFor: validity(authority.validFor),
      }));
    return {
      certificateAuthorities: authorities(root.certificateAuthorities),
      timestampAuthorities: authorities(root.timestampAuthorities),
      tlogs: logs(root.tlogs),
      ctlogs: logs(root.ctlogs),
      publicKey: () => {
        throw new SignError("sign-policy", "a trusted root holds no plain public keys");
      },
    };
  } catch (error) {
    if (error instanceof SignError) throw error;
    throw new SignError("sign-policy", `${where}: cannot read the trusted root: ${describeError(error)}`);
  }
}

/**
 * Reads a sigstore `trusted_root.json` (capped at {@link MAX_TRUSTED_ROOT_BYTES}) into trust
 * material. `file` is relative to `base`; messages name it as given.
 */
export async function loadTrustedRoot(
  file: string,
  base: string,
  problem: (reason: string) => SignError = (reason) =>
    new SignError("sign-policy", `cannot read the trusted root ${file}: ${reason}`),
): Promise<TrustMaterial> {
  let text: string;
  try {
    const handle = await open(path.resolve(base, file), "r");
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw problem("not a regular file");
      if (info.size > MAX_TRUSTED_ROOT_BYTES) {
        throw problem(`larger than ${MAX_TRUSTED_ROOT_BYTES} bytes`);
      }
      text = await handle.readFile("utf8");
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof SignError) throw error;
    throw problem(describeError(error));
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw problem("not JSON");
  }
  return trustMaterialFromTrustedRoot(json, file);
}
