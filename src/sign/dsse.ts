import { verify as cryptoVerify } from "node:crypto";
import { isJsonObject } from "../json-shape.js";
import type { VerificationKey } from "./keys.js";

/**
 * DSSE envelopes, the blobs of cosign's `.att` layers (`application/vnd.dsse.envelope.v1+json`):
 * `{"payloadType", "payload" (base64), "signatures": [{"keyid", "sig" (base64)}]}`, each signature
 * over the pre-authentication encoding of type and payload.
 * https://github.com/secure-systems-lab/dsse/blob/master/envelope.md
 * https://github.com/secure-systems-lab/dsse/blob/master/protocol.md
 */

export interface DsseSignature {
  readonly keyid: string;
  readonly sig: Buffer;
}

export interface DsseEnvelope {
  readonly payloadType: string;
  readonly payload: Buffer;
  readonly signatures: readonly DsseSignature[];
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The envelope in `bytes`, or a reason it is not one. */
export function parseDsseEnvelope(bytes: Uint8Array): DsseEnvelope | string {
  let document: unknown;
  try {
    document = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return "the DSSE envelope is not JSON";
  }
  if (!isJsonObject(document)) return "the DSSE envelope is not a JSON object";
  const { payloadType, payload, signatures } = document;
  if (typeof payloadType !== "string" || typeof payload !== "string" || !BASE64.test(payload)) {
    return "the DSSE envelope has no payloadType or base64 payload";
  }
  if (!Array.isArray(signatures) || signatures.length === 0) return "the DSSE envelope has no signature";
  const parsed: DsseSignature[] = [];
  for (const entry of signatures) {
    if (!isJsonObject(entry) || typeof entry.sig !== "string" || !BASE64.test(entry.sig)) {
      return "a DSSE signature is not base64";
    }
    parsed.push({
      keyid: typeof entry.keyid === "string" ? entry.keyid : "",
      sig: Buffer.from(entry.sig, "base64"),
    });
  }
  return { payloadType, payload: Buffer.from(payload, "base64"), signatures: parsed };
}

/** DSSE's pre-authentication encoding: `DSSEv1 <len> <type> <len> <payload>`. */
export function preAuthenticationEncoding(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, "utf8");
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, "utf8"),
    type,
    Buffer.from(` ${payload.length} `, "utf8"),
    payload,
  ]);
}

/** The key that made one of the envelope's signatures (ECDSA-SHA256 over the PAE), if any. */
export function dsseSigner(
  envelope: DsseEnvelope,
  keys: readonly VerificationKey[],
): VerificationKey | undefined {
  const message = preAuthenticationEncoding(envelope.payloadType, envelope.payload);
  for (const signature of envelope.signatures) {
    for (const key of keys) {
      try {
        if (cryptoVerify("sha256", message, key.publicKey, signature.sig)) return key;
      } catch {
        // Not a signature this key reads (wrong encoding): try the next.
      }
    }
  }
  return undefined;
}
