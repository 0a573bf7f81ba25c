import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { keyIdOf } from "../../src/sign/index.js";
import { captureIO } from "../support/cli.js";
import {
  cosignPayload,
  keySignedLayer,
  pushToRegistry,
  signatureManifest,
} from "../support/hostile-signing.js";
import { allowingLoopbackRegistries } from "../support/local-registries.js";
import { findFreePort, startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { makeImage, pushWithSkopeo, writeOciLayoutDirectly } from "../support/test-images.js";

/**
 * Attacks on the status page's *verified* signature state (issue 14), as a staging pusher or a
 * compromised mirror: `promoter audit serve --public-key` against a real registry that sends the
 * auditor no notifications (a registry not configured to, or a lost notification). The mirror's
 * signature is then replaced by one made with another key: before the fix the page kept showing
 * "signature valid" until the verdict was evicted, i.e. for as long as the process ran.
 */

const TOKEN = "attack-trust-ingest-token-0123456789ab";
const VIEWER_TOKEN = "attack-trust-viewer-token-0123456789ab";
const WAIT_MS = 30_000;

const app = makeImage({ layers: 1, layerSize: 700, mediaTypes: "oci", seed: "attack-trust-app" });
const release = generateKeyPairSync("ec", { namedCurve: "P-256" });
const other = generateKeyPairSync("ec", { namedCurve: "P-256" });
const RELEASE_KEY_ID = keyIdOf(release.publicKey);

let work: string;
let registry: TestRegistry;
let auditUrl: string;
let stopServe: (() => Promise<number>) | undefined;
let serveErrors: () => string;

interface ApiSignature {
  status: string;
  signers: string[];
  reasons: string[];
}
interface ApiMirror {
  mirror: string;
  verified: { state: string; signature?: ApiSignature };
}

/** Polls until `probe` answers; a wait for the server, not a speed assertion. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  let last: unknown;
  for (;;) {
    const value = await probe().catch((error: unknown) => {
      last = error;
      return undefined;
    });
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}: ${String(last)}; ${serveErrors()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function prodSignature(): Promise<ApiSignature | undefined> {
  const response = await fetch(`${auditUrl}/status/api/search?q=app:1.0`, {
    headers: { authorization: `Bearer ${VIEWER_TOKEN}` },
  });
  const body = (await response.json()) as { hits: { mirrors: ApiMirror[] }[] };
  const mirror = body.hits[0]?.mirrors.find((found) => found.mirror === `${registry.host}/prod`);
  return mirror?.verified.state === "known" ? mirror.verified.signature : undefined;
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "hostile-status-trust-"));
  const auditPort = await findFreePort();
  auditUrl = `http://127.0.0.1:${auditPort}`;
  // No notifications: the auditor hears of nothing the mirror serves.
  registry = await startRegistry();
  const layout = path.join(work, "layout");
  await writeOciLayoutDirectly(layout, [{ content: app, tag: "app" }]);
  await pushWithSkopeo(layout, "app", `${registry.host}/staging/app:app`);
  await writeFile(
    path.join(work, "manifest.yaml"),
    [
      "registries:",
      `- name: ${registry.host}/staging`,
      "  src: true",
      `- name: ${registry.host}/prod`,
      "images:",
      "- name: app",
      "  dmap:",
      `    "${app.digest}": ["1.0"]`,
      "",
    ].join("\n"),
  );
  await writeFile(
    path.join(work, "release.key"),
    release.privateKey.export({ type: "pkcs8", format: "pem" }),
  );
  await writeFile(path.join(work, "release.pub"), release.publicKey.export({ type: "spki", format: "pem" }));
  await writeFile(path.join(work, "token"), `${TOKEN}\n`, { mode: 0o600 });
  await writeFile(path.join(work, "viewer-token"), `${VIEWER_TOKEN}\n`, { mode: 0o600 });

  const promote = captureIO({ cwd: work });
  const promoted = await runCli(
    allowingLoopbackRegistries([
      "promote",
      "--manifest",
      "manifest.yaml",
      "--confirm",
      "--quiet",
      "--sign-key",
      "release.key",
    ]),
    promote.io,
  );
  expect(promoted, promote.err()).toBe(0);

  const controller = new AbortController();
  const { io, err } = captureIO({ cwd: work, signal: controller.signal });
  serveErrors = err;
  const done = runCli(
    allowingLoopbackRegistries([
      "audit",
      "serve",
      "--manifest",
      "manifest.yaml",
      "--listen",
      `127.0.0.1:${auditPort}`,
      "--token-file",
      "token",
      "--viewer-token-file",
      "viewer-token",
      "--public-key",
      "release.pub",
      "--trust-max-age",
      "1",
      "--db",
      "audit.db",
    ]),
    io,
  );
  stopServe = async () => {
    controller.abort();
    return done;
  };
  await waitFor("the audit server", async () => ((await fetch(`${auditUrl}/healthz`)).ok ? true : undefined));
}, 120_000);

afterAll(async () => {
  const status = await stopServe?.();
  if (status !== 0) console.error(serveErrors());
  await (registry as TestRegistry | undefined)?.stop();
  await rm(work, { recursive: true, force: true });
});

describe("a mirror's verified signature, attacked by a compromised mirror", () => {
  it("does not keep showing 'valid' after the signature is replaced without any event", async () => {
    const before = await waitFor("the first verdict", prodSignature);
    expect(before).toMatchObject({ status: "valid", signers: [RELEASE_KEY_ID] });

    // The mirror now serves a signature by another key over the right payload; no event comes.
    const forged = signatureManifest([
      keySignedLayer(other.privateKey, cosignPayload(`${registry.host}/prod/app`, app.digest)),
    ]);
    const sigTag = `sha256-${app.digest.slice("sha256:".length)}.sig`;
    await pushToRegistry(registry.host, "prod/app", [{ content: forged, tag: sigTag }], work);

    // Within --trust-max-age (1 s here) the next asks check again and see the replacement.
    const after = await waitFor("the replaced signature seen", async () => {
      const signature = await prodSignature();
      return signature?.status === "valid" ? undefined : signature;
    });
    expect(after).toMatchObject({ status: "invalid", signers: [] });
    expect(after.reasons.join("\n")).toContain("does not verify with the public key");
  });
});
