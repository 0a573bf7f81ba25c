import { sign as cryptoSign } from "node:crypto";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import type { Bundle, SerializedBundle } from "@sigstore/bundle";
import type * as SigstoreSignModule from "@sigstore/sign";
import type { Signer as SigstoreSigner, Witness } from "@sigstore/sign";
import { AbortedError, describeError } from "../errors.js";
import type { CallOptions } from "../registry/index.js";
import { IN_TOTO_PAYLOAD_TYPE } from "./attestation-format.js";
import { CosignAnnotation } from "./cosign-format.js";
import { SignError } from "./errors.js";
import { ENV_KEY_PREFIX, verificationKeyOf, type SigningKey, type VerificationKey } from "./keys.js";
import type { KeylessPolicy } from "./keyless-policy.js";
import { keylessOwnSignatures, keyOwnSignatures, type OwnSignatures } from "./own-signatures.js";

/**
 * Making signatures. Both modes go through `@sigstore/sign`'s bundle builders so the key and
 * keyless paths share one shape: a message-signature bundle over the simple-signing payload
 * (cosign's tag layout takes its signature, certificate and Rekor entry from it), or a DSSE
 * bundle over an in-toto statement (the sigstore bundle layout).
 * https://github.com/sigstore/sigstore-js/tree/main/packages/sign
 *
 * sigstore-js is loaded when the first signature is made, not when a command starts: most runs
 * sign nothing, and loading it costs ~0.2 s.
 */

type SigstoreSign = typeof SigstoreSignModule;
/** Makes the sigstore-js signer and witnesses of a mode, once sigstore-js is loaded. */
type SigstoreParts = (sign: SigstoreSign) => { signer: SigstoreSigner; witnesses: () => Witness[] };

/** The in-toto payload type of the statements the bundle layout signs. */
export { IN_TOTO_PAYLOAD_TYPE };
/** Identity tokens larger than this are refused (a JWT is a few KiB). */
export const MAX_IDENTITY_TOKEN_BYTES = 64 * 1024;
/** Fulcio and Rekor requests: time per attempt. */
export const DEFAULT_SIGSTORE_TIMEOUT_MS = 30_000;
/** The variable cosign and sigstore-js read an OIDC identity token from. */
export const IDENTITY_TOKEN_VARIABLE = "SIGSTORE_ID_TOKEN";

export interface ImageSigner {
  readonly mode: "key" | "keyless";
  /** For messages and plans: `key sha256:1234…` or `keyless (Fulcio https://…)`. */
  readonly description: string;
  /** The public key of key mode. Keyless has none. */
  readonly verificationKey: VerificationKey | undefined;
  /** Recognises this signer's own earlier signatures, fully verified (own-signatures.ts). */
  readonly ownSignatures: OwnSignatures;
  /** Signs simple-signing payload bytes: the cosign layer annotations for them. */
  signPayload(payload: Uint8Array, options?: CallOptions): Promise<Record<string, string>>;
  /** Signs an in-toto statement into a DSSE sigstore bundle (the bundle layout). */
  signStatement(statement: Uint8Array, options?: CallOptions): Promise<SerializedBundle>;
}

/** Rekor's inclusion promise as cosign stores it in `dev.sigstore.cosign/bundle`. */
export interface CosignRekorBundle {
  readonly SignedEntryTimestamp: string;
  readonly Payload: {
    readonly body: string;
    readonly integratedTime: number;
    readonly logIndex: number;
    readonly logID: string;
  };
}

/** Runs `work`, rejecting as soon as `signal` aborts (sigstore-js takes no signal). */
async function abortable<T>(work: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work();
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      reject(new AbortedError("signing aborted"));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    work().then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

function pemCertificate(der: Uint8Array): string {
  const base64 = Buffer.from(der).toString("base64");
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

/** The cosign layer annotations carried by a message-signature bundle. */
export function cosignAnnotationsFromBundle(bundle: Bundle): Record<string, string> {
  if (bundle.content.$case !== "messageSignature") {
    throw new SignError("sign-failed", "expected a message-signature bundle");
  }
  return {
    [CosignAnnotation.signature]: Buffer.from(bundle.content.messageSignature.signature).toString("base64"),
    ...cosignMaterialAnnotations(bundle),
  };
}

/**
 * The annotations of a bundle's verification material as cosign writes them on a `.sig` or
 * `.att` layer: the certificate, its chain and Rekor's inclusion promise (none for a key
 * without a log).
 */
export function cosignMaterialAnnotations(bundle: Bundle): Record<string, string> {
  const annotations: Record<string, string> = {};
  const material = bundle.verificationMaterial.content;
  if (material.$case === "certificate") {
    annotations[CosignAnnotation.certificate] = pemCertificate(material.certificate.rawBytes);
  } else if (material.$case === "x509CertificateChain") {
    const [leaf, ...chain] = material.x509CertificateChain.certificates;
    if (leaf) annotations[CosignAnnotation.certificate] = pemCertificate(leaf.rawBytes);
    if (chain.length > 0) {
      // As cosign writes it (seen in cosign-made keyless signatures): the PEM blocks one per
      // line, no newline after the last.
      annotations[CosignAnnotation.chain] = chain
        .map((cert) => pemCertificate(cert.rawBytes))
        .join("")
        .replace(/\n$/, "");
    }
  }
  const entry = bundle.verificationMaterial.tlogEntries[0];
  if (entry?.inclusionPromise) {
    const rekor: CosignRekorBundle = {
      SignedEntryTimestamp: Buffer.from(entry.inclusionPromise.signedEntryTimestamp).toString("base64"),
      Payload: {
        body: Buffer.from(entry.canonicalizedBody).toString("base64"),
        integratedTime: Number(entry.integratedTime),
        logIndex: Number(entry.logIndex),
        logID: Buffer.from(entry.logId.keyId).toString("hex"),
      },
    };
    annotations[CosignAnnotation.bundle] = JSON.stringify(rekor);
  }
  return annotations;
}

class BundleSigner implements ImageSigner {
  private loaded:
    Promise<{ sign: SigstoreSign; signer: SigstoreSigner; witnesses: () => Witness[] }> | undefined;

  constructor(
    readonly mode: "key" | "keyless",
    readonly description: string,
    private readonly parts: SigstoreParts,
    private readonly redact: (text: string) => string,
    readonly verificationKey: VerificationKey | undefined,
    readonly ownSignatures: OwnSignatures,
  ) {}

  async signPayload(payload: Uint8Array, options: CallOptions = {}): Promise<Record<string, string>> {
    const { sign, signer, witnesses } = await this.load();
    const builder = new sign.MessageSignatureBundleBuilder({ signer, witnesses: witnesses() });
    const bundle = await this.run(() => builder.create({ data: Buffer.from(payload) }), options);
    return cosignAnnotationsFromBundle(bundle);
  }

  async signStatement(statement: Uint8Array, options: CallOptions = {}): Promise<SerializedBundle> {
    const { sign, signer, witnesses } = await this.load();
    const builder = new sign.DSSEBundleBuilder({ signer, witnesses: witnesses() });
    const bundle = await this.run(
      () => builder.create({ data: Buffer.from(statement), type: IN_TOTO_PAYLOAD_TYPE }),
      options,
    );
    const { bundleToJSON } = await import("@sigstore/bundle");
    return bundleToJSON(bundle);
  }

  /** sigstore-js, and this mode's signer (one for the whole run: Fulcio's holds its key). */
  private load() {
    this.loaded ??= import("@sigstore/sign").then((sign) => ({ sign, ...this.parts(sign) }));
    return this.loaded;
  }

  private async run<T>(work: () => Promise<T>, options: CallOptions): Promise<T> {
    try {
      return await abortable(work, options.signal);
    } catch (error) {
      if (error instanceof AbortedError) throw error;
      throw new SignError("sign-failed", `${this.description}: ${this.redact(sigstoreErrorText(error))}`);
    }
  }
}

/**
 * sigstore-js errors carry a code and a cause chain (an HTTP status from Fulcio or Rekor). The
 * cause is described, not attached: sigstore's messages can quote the identity token.
 */
function sigstoreErrorText(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 4; depth++) {
    const code = (current as { code?: unknown }).code;
    const status = (current as { statusCode?: unknown }).statusCode;
    let text = describeError(current);
    if (typeof code === "string") text = `${code}: ${text}`;
    if (typeof status === "number") text += ` (HTTP ${status})`;
    parts.push(text);
    current = (current as { cause?: unknown }).cause;
  }
  return parts.join("; caused by ");
}

export interface KeySignerOptions {
  /** Also record each signature in this Rekor log (cosign does by default); none when absent. */
  readonly rekorUrl?: string;
  readonly timeoutMs?: number;
}

/** Signs with an ECDSA P-256 key (SHA-256, DER signature), as `cosign sign --key`. */
export function createKeySigner(key: SigningKey, options: KeySignerOptions = {}): ImageSigner {
  const signer: SigstoreSigner = {
    sign: (data: Buffer) =>
      Promise.resolve({
        signature: cryptoSign("sha256", data, key.privateKey),
        key: { $case: "publicKey", publicKey: key.publicKeyPem, hint: key.keyId },
      }),
  };
  const rekorUrl = options.rekorUrl;
  const parts: SigstoreParts = (sign) => ({
    signer,
    witnesses: () =>
      rekorUrl === undefined
        ? []
        : [
            new sign.RekorWitness({
              rekorBaseURL: rekorUrl,
              timeout: options.timeoutMs ?? DEFAULT_SIGSTORE_TIMEOUT_MS,
            }),
          ],
  });
  const verificationKey = verificationKeyOf(key);
  return new BundleSigner(
    "key",
    `key ${key.keyId.slice(0, 19)}…`,
    parts,
    (text) => text,
    verificationKey,
    keyOwnSignatures(verificationKey, { logsToRekor: rekorUrl !== undefined }),
  );
}

/**
 * Identity tokens obtained at run time rather than read (a service account's, through Google's
 * IAM Credentials API: `--signer-account`).
 */
export interface IdentityTokenProvider {
  /** For messages: whose tokens and from where. */
  readonly description: string;
  /** A current token (a JWT); asked for each certificate. */
  token(): Promise<string>;
}

export interface KeylessSignerOptions {
  readonly fulcioUrl: string;
  readonly rekorUrl: string;
  /** Where the OIDC identity token comes from: a file, `env://NAME`, or a provider. */
  readonly identityToken: string | IdentityTokenProvider;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
  readonly timeoutMs?: number;
  /**
   * The trusted root and certificate identity (and issuer) of this signer's certificates: what
   * makes an earlier keyless signature ours. Without it none is, and every run signs again.
   */
  readonly ownIdentity?: KeylessPolicy;
}

function checkServiceUrl(name: string, value: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new SignError("sign-failed", `${name} ${JSON.stringify(value)} is not a URL`);
  }
  if (
    url.protocol !== "https:" &&
    !(url.protocol === "http:" && /^(127\.|localhost$|\[::1\]$)/.test(url.hostname))
  ) {
    throw new SignError("sign-failed", `${name} must be https (plain http only on loopback): ${value}`);
  }
}

/**
 * Keyless signing: an ephemeral key, a Fulcio certificate binding it to the OIDC identity in the
 * token, and a Rekor entry, as `cosign sign` without `--key`.
 * https://docs.sigstore.dev/certificate_authority/overview/
 */
export function createKeylessSigner(options: KeylessSignerOptions): ImageSigner {
  checkServiceUrl("the Fulcio URL", options.fulcioUrl);
  checkServiceUrl("the Rekor URL", options.rekorUrl);
  const timeout = options.timeoutMs ?? DEFAULT_SIGSTORE_TIMEOUT_MS;
  const seen = new Set<string>();
  const identityProvider = {
    getToken: async (): Promise<string> => {
      const token = await identityTokenOf(options);
      seen.add(token);
      return token;
    },
  };
  const parts: SigstoreParts = (sign) => ({
    signer: new sign.FulcioSigner({ identityProvider, fulcioBaseURL: options.fulcioUrl, timeout }),
    witnesses: () => [new sign.RekorWitness({ rekorBaseURL: options.rekorUrl, timeout })],
  });
  const redact = (text: string): string => {
    let result = text;
    for (const token of seen) result = result.split(token).join("[REDACTED]");
    return result;
  };
  return new BundleSigner(
    "keyless",
    `keyless (Fulcio ${options.fulcioUrl})`,
    parts,
    redact,
    undefined,
    keylessOwnSignatures(options.ownIdentity),
  );
}

/** The identity token for the next certificate, read or obtained afresh each time (tokens expire). */
async function identityTokenOf(options: KeylessSignerOptions): Promise<string> {
  const source = options.identityToken;
  if (typeof source === "string") return readIdentityToken(source, options);
  let token: string;
  try {
    token = await source.token();
  } catch (error) {
    throw new SignError(
      "sign-failed",
      `no identity token from ${source.description}: ${describeError(error)}`,
    );
  }
  if (token.length > MAX_IDENTITY_TOKEN_BYTES || token.split(".").length !== 3) {
    throw new SignError("sign-failed", `the identity token from ${source.description} is not a JWT`);
  }
  return token;
}

/** Reads an OIDC token from a file or `env://NAME`, read afresh each time (tokens expire). */
export async function readIdentityToken(
  source: string,
  options: { env?: Readonly<Record<string, string | undefined>>; cwd?: string } = {},
): Promise<string> {
  let text: string;
  if (source.startsWith(ENV_KEY_PREFIX)) {
    const name = source.slice(ENV_KEY_PREFIX.length);
    const value = (options.env ?? process.env)[name];
    if (value === undefined || value.trim() === "") {
      throw new SignError("sign-failed", `no identity token: the environment variable ${name} is not set`);
    }
    text = value;
  } else {
    const file = path.resolve(options.cwd ?? process.cwd(), source);
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      throw new SignError(
        "sign-failed",
        `cannot read the identity token file ${source}: ${describeError(error)}`,
      );
    }
  }
  const token = text.trim();
  if (token.length > MAX_IDENTITY_TOKEN_BYTES) {
    throw new SignError(
      "sign-failed",
      `the identity token from ${source} is larger than ${MAX_IDENTITY_TOKEN_BYTES} bytes`,
    );
  }
  if (token.split(".").length !== 3) {
    throw new SignError(
      "sign-failed",
      `the identity token from ${source} is not a JWT (three dot-separated parts)`,
    );
  }
  return token;
}
