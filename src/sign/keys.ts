import { createHash, createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { open } from "node:fs/promises";
import * as path from "node:path";
import { describeError } from "../errors.js";
import { SignError } from "./errors.js";

/**
 * Signing and verification keys: ECDSA P-256, the one scheme cosign requires
 * (https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md#signature-schemes).
 * Private keys are PEM, PKCS#8 (`PRIVATE KEY`, or `ENCRYPTED PRIVATE KEY` with a password) or
 * SEC1 (`EC PRIVATE KEY`); public keys are PEM SPKI (`PUBLIC KEY`), as cosign writes them.
 * Errors say what is wrong with the file or variable and never contain key material.
 */

/** A key file larger than this is not a key. */
export const MAX_KEY_FILE_BYTES = 64 * 1024;
/** Names a key held in an environment variable instead of a file, as cosign's `env://NAME`. */
export const ENV_KEY_PREFIX = "env://";
/** The variable CI is expected to use: `--sign-key env://PROMOTER_SIGN_KEY`. */
export const SIGN_KEY_VARIABLE = "PROMOTER_SIGN_KEY";
/** Password of an encrypted PKCS#8 signing key (`ENCRYPTED PRIVATE KEY`). */
export const SIGN_KEY_PASSWORD_VARIABLE = "PROMOTER_SIGN_KEY_PASSWORD";

const P256_CURVE = "prime256v1";

export interface SigningKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The SPKI public key as PEM (what verifiers are given). */
  readonly publicKeyPem: string;
  /** `sha256:<hex>` of the DER SPKI public key: names the key in messages and bundles. */
  readonly keyId: string;
  /** Where the key came from, for messages: a file path or `env://NAME`. */
  readonly source: string;
}

export interface VerificationKey {
  readonly publicKey: KeyObject;
  readonly publicKeyPem: string;
  readonly keyId: string;
  readonly source: string;
}

export interface KeySourceOptions {
  /** Environment for `env://NAME` and the password variable. Default: process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Base for relative file names. Default: process.cwd(). */
  readonly cwd?: string;
  readonly signal?: AbortSignal;
}

/**
 * A key given inline (`--sign-key "$(cat key.pem)"`) where a file name belongs must not reach a CI
 * log through the message that says it is not a file: such a value is never shown.
 */
function looksLikeKeyMaterial(source: string): boolean {
  return /-----BEGIN|[\r\n]/.test(source) || source.length > 1024;
}

function keyError(source: string, reason: string, cause?: unknown): SignError {
  const inline = looksLikeKeyMaterial(source);
  const shown = inline
    ? "(the value given, not shown: it looks like key material, not a file name or env://NAME)"
    : source;
  const why = inline ? reason.split(source).join("(the value given)") : reason;
  return new SignError(
    "sign-key",
    `cannot use key ${shown}: ${why}`,
    cause === undefined ? undefined : { cause },
  );
}

interface PemBlock {
  readonly label: string;
  readonly text: string;
  readonly encryptedHeader: boolean;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

function pemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(PEM_BLOCK)) {
    const label = match[1] ?? "";
    blocks.push({ label, text: match[0], encryptedHeader: /Proc-Type:\s*4,ENCRYPTED/.test(match[0]) });
  }
  return blocks;
}

/**
 * CI secret stores often hold a PEM file base64-encoded (one line, no newline trouble): accept
 * both forms.
 */
function pemText(text: string): string {
  if (text.includes("-----BEGIN")) return text;
  const compact = text.replace(/\s+/g, "");
  if (compact.length > 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(compact)) {
    const decoded = Buffer.from(compact, "base64").toString("utf8");
    if (decoded.includes("-----BEGIN")) return decoded;
  }
  return text;
}

const PRIVATE_LABELS = new Set(["PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"]);
const UNSUPPORTED_PRIVATE: Readonly<Record<string, string>> = {
  "ENCRYPTED COSIGN PRIVATE KEY":
    "cosign's encrypted key format (scrypt + secretbox) is not supported; use an unencrypted or password-encrypted PKCS#8 PEM key",
  "ENCRYPTED SIGSTORE PRIVATE KEY":
    "sigstore's encrypted key format (scrypt + secretbox) is not supported; use an unencrypted or password-encrypted PKCS#8 PEM key",
  "RSA PRIVATE KEY": "it is an RSA key; an ECDSA P-256 key is needed",
  "OPENSSH PRIVATE KEY": "it is an OpenSSH key; an ECDSA P-256 key in PEM (PKCS#8 or SEC1) is needed",
  "DSA PRIVATE KEY": "it is a DSA key; an ECDSA P-256 key is needed",
};

function checkP256(key: KeyObject, source: string): void {
  if (key.asymmetricKeyType !== "ec") {
    throw keyError(source, `it is a ${key.asymmetricKeyType ?? "unknown"} key; an ECDSA P-256 key is needed`);
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (curve !== P256_CURVE) {
    throw keyError(source, `it is an EC key on curve ${curve ?? "unknown"}; P-256 (prime256v1) is needed`);
  }
}

export function keyIdOf(publicKey: KeyObject): string {
  const der = publicKey.export({ type: "spki", format: "der" });
  return `sha256:${createHash("sha256").update(der).digest("hex")}`;
}

/** Parses a PEM ECDSA P-256 private key (PKCS#8, encrypted PKCS#8 with `password`, or SEC1). */
export function parseSigningKey(text: string, source: string, password?: string): SigningKey {
  const blocks = pemBlocks(pemText(text));
  if (blocks.length === 0) throw keyError(source, "no PEM block (-----BEGIN ...-----) found");
  const block = blocks.find((candidate) => PRIVATE_LABELS.has(candidate.label));
  if (!block) {
    const labels = blocks.map((candidate) => candidate.label);
    for (const label of labels) {
      const reason = UNSUPPORTED_PRIVATE[label];
      if (reason) throw keyError(source, reason);
    }
    if (labels.includes("PUBLIC KEY")) {
      throw keyError(source, "it holds a public key; signing needs the private key");
    }
    if (labels.includes("CERTIFICATE")) {
      throw keyError(source, "it holds a certificate; signing needs the private key");
    }
    throw keyError(source, `no private key block (found ${labels.join(", ")})`);
  }
  const encrypted = block.label === "ENCRYPTED PRIVATE KEY" || block.encryptedHeader;
  if (encrypted && (password === undefined || password === "")) {
    throw keyError(
      source,
      `the key is encrypted; give its password in ${SIGN_KEY_PASSWORD_VARIABLE} or use an unencrypted key`,
    );
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({
      key: block.text,
      format: "pem",
      ...(encrypted && password !== undefined ? { passphrase: password } : {}),
    });
  } catch (error) {
    const reason = encrypted
      ? "the key cannot be decrypted (wrong password?) or is damaged"
      : `the ${block.label} block cannot be parsed (${opensslReason(error)})`;
    throw keyError(source, reason, error);
  }
  checkP256(privateKey, source);
  const publicKey = createPublicKey(privateKey);
  return {
    privateKey,
    publicKey,
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    keyId: keyIdOf(publicKey),
    source,
  };
}

/** Parses a PEM SPKI ECDSA P-256 public key. */
export function parseVerificationKey(text: string, source: string): VerificationKey {
  const blocks = pemBlocks(pemText(text));
  if (blocks.length === 0) throw keyError(source, "no PEM block (-----BEGIN ...-----) found");
  const block = blocks.find((candidate) => candidate.label === "PUBLIC KEY");
  if (!block) {
    const labels = blocks.map((candidate) => candidate.label);
    if (labels.some((label) => label.includes("PRIVATE KEY"))) {
      throw keyError(source, "it holds a private key; verification takes the public key (PEM PUBLIC KEY)");
    }
    throw keyError(source, `no PUBLIC KEY block (found ${labels.join(", ")})`);
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: block.text, format: "pem" });
  } catch (error) {
    throw keyError(source, `the PUBLIC KEY block cannot be parsed (${opensslReason(error)})`, error);
  }
  checkP256(publicKey, source);
  return {
    publicKey,
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    keyId: keyIdOf(publicKey),
    source,
  };
}

/** OpenSSL's reason without anything from the input (its messages name routines, not data). */
function opensslReason(error: unknown): string {
  const message = describeError(error);
  return message.length > 120 ? `${message.slice(0, 120)}…` : message;
}

/** Reads a key file (capped) or an `env://NAME` variable. */
async function readKeyText(
  reference: string,
  options: KeySourceOptions,
): Promise<{ text: string; source: string }> {
  const env = options.env ?? process.env;
  if (reference.startsWith(ENV_KEY_PREFIX)) {
    const name = reference.slice(ENV_KEY_PREFIX.length);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw keyError(reference, "env:// must be followed by a variable name, e.g. env://PROMOTER_SIGN_KEY");
    }
    const value = env[name];
    if (value === undefined || value.trim() === "") {
      throw keyError(reference, `the environment variable ${name} is not set or empty`);
    }
    if (value.length > MAX_KEY_FILE_BYTES) {
      throw keyError(reference, `the variable holds more than ${MAX_KEY_FILE_BYTES} characters`);
    }
    return { text: value, source: reference };
  }
  if (reference.length === 0) throw keyError("(empty)", "no file name given");
  const file = path.resolve(options.cwd ?? process.cwd(), reference);
  let handle;
  try {
    handle = await open(file, "r");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === "ENOENT"
        ? "no such file"
        : code === "EACCES"
          ? "permission denied"
          : code === "EISDIR"
            ? "it is a directory"
            : describeError(error);
    throw keyError(reference, reason, error);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw keyError(reference, "not a regular file");
    if (info.size > MAX_KEY_FILE_BYTES) {
      throw keyError(reference, `larger than ${MAX_KEY_FILE_BYTES} bytes; not a key file`);
    }
    options.signal?.throwIfAborted();
    const text = await handle.readFile({
      encoding: "utf8",
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return { text, source: reference };
  } finally {
    await handle.close();
  }
}

/**
 * Loads a signing key from a file or from `env://NAME`. An encrypted PKCS#8 key takes its
 * password from `PROMOTER_SIGN_KEY_PASSWORD`.
 */
export async function loadSigningKey(reference: string, options: KeySourceOptions = {}): Promise<SigningKey> {
  const { text, source } = await readKeyText(reference, options);
  const password = (options.env ?? process.env)[SIGN_KEY_PASSWORD_VARIABLE];
  return parseSigningKey(text, source, password);
}

/** Loads a verification (public) key from a file or from `env://NAME`. */
export async function loadVerificationKey(
  reference: string,
  options: KeySourceOptions = {},
): Promise<VerificationKey> {
  const { text, source } = await readKeyText(reference, options);
  return parseVerificationKey(text, source);
}

/** The public half of a signing key, as a verification key. */
export function verificationKeyOf(key: SigningKey): VerificationKey {
  return { publicKey: key.publicKey, publicKeyPem: key.publicKeyPem, keyId: key.keyId, source: key.source };
}
