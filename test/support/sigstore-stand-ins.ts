/**
 * Minimal stand-ins for Fulcio and Rekor on 127.0.0.1, enough for `@sigstore/sign` to complete
 * keyless signing and for `@sigstore/verify` to check the result against their trust root. Not a
 * real CA or log: no OIDC verification (the token's `sub` and `iss` are taken as given, its
 * signature, audience and expiry unchecked), no SCTs and no CT log, no check of what an entry
 * claims. Rekor entries do carry a signed entry timestamp and an RFC 6962 inclusion proof with a
 * signed checkpoint, over an in-memory tree. What they check and skip: docs/test-harness.md.
 * https://github.com/sigstore/fulcio/blob/main/docs/api.md (POST /api/v2/signingCert)
 * https://github.com/sigstore/rekor/blob/main/openapi.yaml (POST /api/v1/log/entries)
 */
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";

// --- A small DER encoder (X.690), enough for certificates --------------------------------------

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let value = n; value > 0; value = Math.floor(value / 256)) bytes.unshift(value & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), length(content.length), content]);
}
const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const explicit = (n: number, content: Buffer) => tlv(0xa0 + n, content);
const octets = (content: Buffer) => tlv(0x04, content);
const utf8 = (text: string) => tlv(0x0c, Buffer.from(text, "utf8"));
const bool = (value: boolean) => tlv(0x01, Buffer.from([value ? 0xff : 0]));
function integer(bytes: Buffer): Buffer {
  const positive = (bytes[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
  return tlv(0x02, positive);
}
function oid(text: string): Buffer {
  const parts = text.split(".").map(Number);
  const bytes: number[] = [40 * (parts[0] ?? 0) + (parts[1] ?? 0)];
  for (const part of parts.slice(2)) {
    const chunk: number[] = [part & 0x7f];
    for (let value = Math.floor(part / 128); value > 0; value = Math.floor(value / 128))
      chunk.unshift(0x80 | (value & 0x7f));
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}
function generalizedTime(date: Date): Buffer {
  const text = date
    .toISOString()
    .replace(/[-:T]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return tlv(0x18, Buffer.from(text, "ascii"));
}
const bitString = (content: Buffer, unused = 0) => tlv(0x03, Buffer.concat([Buffer.from([unused]), content]));

const ECDSA_SHA256 = seq(oid("1.2.840.10045.4.3.2"));
const OID = {
  organization: "2.5.4.10",
  commonName: "2.5.4.3",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  codeSigning: "1.3.6.1.5.5.7.3.3",
  fulcioIssuerV1: "1.3.6.1.4.1.57264.1.1",
  fulcioIssuerV2: "1.3.6.1.4.1.57264.1.8",
};

function name(organization: string, commonName: string): Buffer {
  return seq(
    set(seq(oid(OID.organization), utf8(organization))),
    set(seq(oid(OID.commonName), utf8(commonName))),
  );
}
function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

function certificate(options: {
  issuer: Buffer;
  subject: Buffer;
  publicKey: KeyObject;
  signer: KeyObject;
  notBefore: Date;
  notAfter: Date;
  extensions: Buffer[];
}): Buffer {
  const spki = options.publicKey.export({ type: "spki", format: "der" });
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))),
    integer(randomBytes(16)),
    ECDSA_SHA256,
    options.issuer,
    seq(generalizedTime(options.notBefore), generalizedTime(options.notAfter)),
    options.subject,
    spki,
    explicit(3, seq(...options.extensions)),
  );
  return seq(tbs, ECDSA_SHA256, bitString(sign("sha256", tbs, options.signer)));
}

function pem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${
    der
      .toString("base64")
      .match(/.{1,64}/g)
      ?.join("\n") ?? ""
  }\n-----END CERTIFICATE-----\n`;
}

// --- JSON canonicalisation (sorted keys), as Rekor signs entries ---------------------------------

function canonical(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  const record = value as Record<string, unknown>;
  return `{${Object.keys(record)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${canonical(record[key])}`)
    .join(",")}}`;
}

// --- An RFC 6962 Merkle tree, for inclusion proofs ----------------------------------------------

const leafHash = (data: Buffer) =>
  createHash("sha256")
    .update(Buffer.from([0]))
    .update(data)
    .digest();
const nodeHash = (left: Buffer, right: Buffer) =>
  createHash("sha256")
    .update(Buffer.from([1]))
    .update(left)
    .update(right)
    .digest();

function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH(D[n]) of RFC 6962 section 2.1, over leaf hashes. */
function treeHash(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 1) return leaves[0] ?? Buffer.alloc(32);
  const k = largestPowerOfTwoBelow(leaves.length);
  return nodeHash(treeHash(leaves.slice(0, k)), treeHash(leaves.slice(k)));
}

/** PATH(m, D[n]) of RFC 6962 section 2.1.1: the audit path, lowest level first. */
function auditPath(index: number, leaves: readonly Buffer[]): Buffer[] {
  if (leaves.length <= 1) return [];
  const k = largestPowerOfTwoBelow(leaves.length);
  return index < k
    ? [...auditPath(index, leaves.slice(0, k)), treeHash(leaves.slice(k))]
    : [...auditPath(index - k, leaves.slice(k)), treeHash(leaves.slice(0, k))];
}

// --- The stand-ins -----------------------------------------------------------------------------

export interface StandInRequest {
  readonly service: "fulcio" | "rekor";
  readonly path: string;
  readonly status: number;
}

export interface SigstoreStandIns {
  readonly fulcioUrl: string;
  readonly rekorUrl: string;
  /** A sigstore `trusted_root.json` document trusting these stand-ins. */
  trustedRoot(): Record<string, unknown>;
  readonly requests: StandInRequest[];
  /** Make the next `count` requests to a service answer 503. */
  failNext(service: "fulcio" | "rekor", count: number): void;
  /**
   * Hold each Fulcio answer this long (so that concurrent signers overlap) and count the most
   * certificate requests ever in flight at once; `fulcioPeak()` reads and resets the count.
   */
  holdFulcio(ms: number): void;
  fulcioPeak(): number;
  close(): Promise<void>;
}

/** An unsigned OIDC-shaped token (`alg: none`) with the given subject and issuer. */
export function identityToken(subject: string, issuer: string): string {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  return `${encode({ alg: "none", typ: "JWT" })}.${encode({ sub: subject, email: subject, email_verified: true, iss: issuer, aud: "sigstore", iat: now, exp: now + 600 })}.`;
}

const MAX_BODY_BYTES = 1024 * 1024;

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MAX_BODY_BYTES) throw new Error("body too large");
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address && typeof address === "object") resolve(`http://127.0.0.1:${address.port}`);
      else reject(new Error("no address"));
    });
  });
}

export async function startSigstoreStandIns(): Promise<SigstoreStandIns> {
  const requests: StandInRequest[] = [];
  const failures = { fulcio: 0, rekor: 0 };
  const ca = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const caName = name("sigstore stand-in", "fulcio stand-in");
  const now = Date.now();
  const caValidity = { start: new Date(now - 3600_000), end: new Date(now + 24 * 3600_000) };
  const caCert = certificate({
    issuer: caName,
    subject: caName,
    publicKey: ca.publicKey,
    signer: ca.privateKey,
    notBefore: caValidity.start,
    notAfter: caValidity.end,
    extensions: [
      extension(OID.basicConstraints, true, seq(bool(true))),
      // keyCertSign (bit 5) and cRLSign (bit 6): 0b00000110, one unused bit.
      extension(OID.keyUsage, true, bitString(Buffer.from([0x06]), 1)),
    ],
  });
  const log = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const logSpki = log.publicKey.export({ type: "spki", format: "der" });
  const logId = createHash("sha256").update(logSpki).digest();
  const leaves: Buffer[] = [];
  let origin = "";

  const fulcioLoad = { holdMs: 0, inFlight: 0, peak: 0 };
  const fulcio = createServer((request, response) => {
    fulcioLoad.inFlight += 1;
    fulcioLoad.peak = Math.max(fulcioLoad.peak, fulcioLoad.inFlight);
    void (async () => {
      const reply = (status: number, body: unknown) => {
        requests.push({ service: "fulcio", path: request.url ?? "", status });
        const answer = () => {
          fulcioLoad.inFlight -= 1;
          response.writeHead(status, { "content-type": "application/json" });
          response.end(JSON.stringify(body));
        };
        if (fulcioLoad.holdMs > 0) setTimeout(answer, fulcioLoad.holdMs);
        else answer();
      };
      try {
        if (failures.fulcio > 0) {
          failures.fulcio -= 1;
          reply(503, { message: "stand-in told to fail" });
          return;
        }
        if (request.method !== "POST" || request.url !== "/api/v2/signingCert") {
          reply(404, { message: "not found" });
          return;
        }
        const body = (await readJson(request)) as {
          credentials?: { oidcIdentityToken?: string };
          publicKeyRequest?: { publicKey?: { content?: string }; proofOfPossession?: string };
        };
        const token = body.credentials?.oidcIdentityToken ?? "";
        const claims = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as {
          sub?: string;
          iss?: string;
        };
        if (!claims.sub || !claims.iss) {
          reply(401, { message: "token without sub or iss" });
          return;
        }
        const publicKey = createPublicKey(body.publicKeyRequest?.publicKey?.content ?? "");
        const proof = Buffer.from(body.publicKeyRequest?.proofOfPossession ?? "", "base64");
        if (!verify("sha256", Buffer.from(claims.sub), publicKey, proof)) {
          reply(400, { message: "proof of possession does not verify" });
          return;
        }
        const issued = Date.now();
        const subjectAltName = claims.sub.includes("@")
          ? seq(tlv(0x81, Buffer.from(claims.sub, "ascii")))
          : seq(tlv(0x86, Buffer.from(claims.sub, "ascii")));
        const leaf = certificate({
          issuer: caName,
          subject: seq(),
          publicKey,
          signer: ca.privateKey,
          notBefore: new Date(issued - 60_000),
          notAfter: new Date(issued + 10 * 60_000),
          extensions: [
            // digitalSignature (bit 0): 0b10000000, seven unused bits.
            extension(OID.keyUsage, true, bitString(Buffer.from([0x80]), 7)),
            extension(OID.extKeyUsage, false, seq(oid(OID.codeSigning))),
            extension(OID.subjectAltName, true, subjectAltName),
            extension(OID.fulcioIssuerV1, false, Buffer.from(claims.iss, "utf8")),
            extension(OID.fulcioIssuerV2, false, utf8(claims.iss)),
          ],
        });
        reply(201, { signedCertificateEmbeddedSct: { chain: { certificates: [pem(leaf), pem(caCert)] } } });
      } catch (error) {
        reply(400, { message: (error as Error).message });
      }
    })();
  });

  const rekor = createServer((request, response) => {
    void (async () => {
      const reply = (status: number, body: unknown) => {
        requests.push({ service: "rekor", path: request.url ?? "", status });
        response.writeHead(status, { "content-type": "application/json" });
        response.end(JSON.stringify(body));
      };
      try {
        if (failures.rekor > 0) {
          failures.rekor -= 1;
          reply(503, { message: "stand-in told to fail" });
          return;
        }
        if (request.method !== "POST" || request.url !== "/api/v1/log/entries") {
          reply(404, { message: "not found" });
          return;
        }
        const proposed = (await readJson(request)) as {
          kind?: string;
          apiVersion?: string;
          spec?: { proposedContent?: { envelope?: string; verifiers?: string[] } };
        };
        let entry: unknown = proposed;
        if (proposed.kind === "dsse") {
          // Rekor stores a DSSE entry as hashes and signatures, not the envelope itself.
          const envelopeText = proposed.spec?.proposedContent?.envelope ?? "{}";
          const envelope = JSON.parse(envelopeText) as { payload?: string; signatures?: { sig?: string }[] };
          entry = {
            apiVersion: "0.0.1",
            kind: "dsse",
            spec: {
              envelopeHash: {
                algorithm: "sha256",
                value: createHash("sha256").update(envelopeText).digest("hex"),
              },
              payloadHash: {
                algorithm: "sha256",
                value: createHash("sha256")
                  .update(Buffer.from(envelope.payload ?? "", "base64"))
                  .digest("hex"),
              },
              signatures: (envelope.signatures ?? []).map((signature) => ({
                signature: signature.sig ?? "",
                verifier: proposed.spec?.proposedContent?.verifiers?.[0] ?? "",
              })),
            },
          };
        } else if (proposed.kind !== "hashedrekord") {
          reply(400, { message: `unsupported kind ${String(proposed.kind)}` });
          return;
        }
        const bodyBytes = Buffer.from(canonical(entry));
        const body = bodyBytes.toString("base64");
        const integratedTime = Math.floor(Date.now() / 1000);
        const index = leaves.length;
        leaves.push(leafHash(bodyBytes));
        const logID = logId.toString("hex");
        const set = sign(
          "sha256",
          Buffer.from(canonical({ body, integratedTime, logID, logIndex: index })),
          log.privateKey,
        );
        // A checkpoint (signed note) over the tree that now ends with this entry.
        const root = treeHash(leaves);
        const note = `${origin}\n${leaves.length}\n${root.toString("base64")}\n`;
        const noteSignature = Buffer.concat([
          logId.subarray(0, 4),
          sign("sha256", Buffer.from(note), log.privateKey),
        ]);
        const checkpoint = `${note}\n\u2014 ${origin} ${noteSignature.toString("base64")}\n`;
        const uuid = createHash("sha256").update(body).digest("hex");
        reply(201, {
          [uuid]: {
            body,
            integratedTime,
            logID,
            logIndex: index,
            verification: {
              signedEntryTimestamp: set.toString("base64"),
              inclusionProof: {
                logIndex: index,
                treeSize: leaves.length,
                rootHash: root.toString("hex"),
                hashes: auditPath(index, leaves).map((hash) => hash.toString("hex")),
                checkpoint,
              },
            },
          },
        });
      } catch (error) {
        reply(400, { message: (error as Error).message });
      }
    })();
  });

  const [fulcioUrl, rekorUrl] = await Promise.all([listen(fulcio), listen(rekor)]);
  // The checkpoint's origin; verifiers match it against the log's URL.
  origin = new URL(rekorUrl).host;
  return {
    fulcioUrl,
    rekorUrl,
    requests,
    failNext(service, count) {
      failures[service] = count;
    },
    holdFulcio(ms) {
      fulcioLoad.holdMs = ms;
    },
    fulcioPeak() {
      const peak = fulcioLoad.peak;
      fulcioLoad.peak = 0;
      return peak;
    },
    trustedRoot() {
      return {
        mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        tlogs: [
          {
            baseUrl: rekorUrl,
            hashAlgorithm: "SHA2_256",
            publicKey: {
              rawBytes: logSpki.toString("base64"),
              keyDetails: "PKIX_ECDSA_P256_SHA_256",
              validFor: { start: caValidity.start.toISOString() },
            },
            logId: { keyId: logId.toString("base64") },
          },
        ],
        certificateAuthorities: [
          {
            subject: { organization: "sigstore stand-in", commonName: "fulcio stand-in" },
            uri: fulcioUrl,
            certChain: { certificates: [{ rawBytes: caCert.toString("base64") }] },
            validFor: { start: caValidity.start.toISOString(), end: caValidity.end.toISOString() },
          },
        ],
        ctlogs: [],
        timestampAuthorities: [],
      };
    },
    async close() {
      await Promise.all(
        [fulcio, rekor].map(
          (server) =>
            new Promise<void>((resolve) => {
              server.close(() => {
                resolve();
              });
              server.closeAllConnections();
            }),
        ),
      );
    },
  };
}
