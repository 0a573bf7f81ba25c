import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { expect } from "vitest";

/**
 * An attestation judge independent of the project: plain HTTP reads of a registry's referrers
 * (the API, else the tag-schema index), the bundle a referrer carries, the DSSE
 * pre-authentication encoding rebuilt here, and `openssl dgst -verify` over it.
 */

export const BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json";

const ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

export async function get(url: string): Promise<Buffer | undefined> {
  const response = await fetch(url, { headers: { Accept: ACCEPT } });
  if (response.status === 404) return undefined;
  expect(response.status, url).toBe(200);
  return Buffer.from(await response.arrayBuffer());
}

export interface Entry {
  digest: string;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** The referrers of `subject`: the API where the mirror has it, else the tag-schema index. */
export async function referrers(url: string, repository: string, subject: string): Promise<Entry[]> {
  const viaApi = await fetch(`${url}/v2/${repository}/referrers/${subject}`);
  const bytes =
    viaApi.status === 200
      ? Buffer.from(await viaApi.arrayBuffer())
      : await get(`${url}/v2/${repository}/manifests/${subject.replace(":", "-")}`);
  return bytes ? ((JSON.parse(bytes.toString()) as { manifests?: Entry[] }).manifests ?? []) : [];
}

export async function attestationsOf(url: string, repository: string, subject: string, type: string) {
  return (await referrers(url, repository, subject)).filter(
    (entry) =>
      entry.artifactType === BUNDLE && entry.annotations?.["dev.sigstore.bundle.predicateType"] === type,
  );
}

export interface Envelope {
  payloadType: string;
  payload: string;
  signatures: { keyid: string; sig: string }[];
}

/** DSSE's PAE, written out here from the DSSE protocol, and `openssl dgst -verify` over it. */
export async function opensslVerifies(envelope: Envelope, publicPem: string): Promise<boolean> {
  const payload = Buffer.from(envelope.payload, "base64");
  const type = Buffer.from(envelope.payloadType);
  const pae = Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `),
    type,
    Buffer.from(` ${payload.length} `),
    payload,
  ]);
  const dir = await mkdtemp(path.join(tmpdir(), "openssl-"));
  await writeFile(path.join(dir, "pae.bin"), pae);
  await writeFile(path.join(dir, "sig.der"), Buffer.from(envelope.signatures[0]?.sig ?? "", "base64"));
  await writeFile(path.join(dir, "pub.pem"), publicPem);
  try {
    const out = execFileSync(
      "openssl",
      ["dgst", "-sha256", "-verify", "pub.pem", "-signature", "sig.der", "pae.bin"],
      { cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
    ).toString();
    return out.trim() === "Verified OK";
  } catch {
    return false;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The bundle a referrer carries (its one layer), read over plain HTTP. */
export async function bundleOf(url: string, repository: string, referrer: string) {
  const manifest = JSON.parse((await get(`${url}/v2/${repository}/manifests/${referrer}`))!.toString()) as {
    subject: { digest: string };
    layers: { digest: string }[];
  };
  const bundle = JSON.parse(
    (await get(`${url}/v2/${repository}/blobs/${manifest.layers[0]!.digest}`))!.toString(),
  ) as {
    dsseEnvelope: Envelope;
  };
  return { subject: manifest.subject.digest, envelope: bundle.dsseEnvelope };
}

export function statementOf(envelope: Envelope) {
  return JSON.parse(Buffer.from(envelope.payload, "base64").toString()) as {
    subject: { name: string; digest: Record<string, string> }[];
    predicateType: string;
    predicate: Record<string, unknown> & { review?: { manifest?: unknown } };
  };
}
