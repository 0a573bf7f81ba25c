import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { keyIdOf } from "../../src/sign/index.js";
import { attestationsFor, pushReferrers } from "../support/attestations.js";
import { captureIO } from "../support/cli.js";
import {
  cosignPayload,
  keySignedLayer,
  pushToRegistry,
  signatureManifest,
} from "../support/hostile-signing.js";
import { allowingLoopbackRegistries } from "../support/local-registries.js";
import {
  findFreePort,
  REGISTRY_PLACEHOLDER,
  startRegistry,
  type TestRegistry,
} from "../support/registry-harness.js";
import { launchChromium, screenshotBothWidths, VIEWPORTS } from "../support/status-browser.js";
import { makeImage, pushWithSkopeo, writeOciLayoutDirectly } from "../support/test-images.js";

/**
 * Issue 14, "signature valid, attestation with approver and change": `promoter audit serve
 * --public-key` verifies each mirror's signature and promotion attestation with the checks of
 * `promoter verify`, and the status page shows the verdicts in a real browser (Debian's chromium,
 * playwright-core). The image is promoted and signed by `promoter promote --confirm --sign-key`
 * into two mirrors of a real registry; then one mirror's signature is replaced by one made with
 * another key (and one naming a hostile identity), and the other mirror gets a promotion record
 * with approvers, signed with the release key, one approver's name made of markup.
 */

const TOKEN = "trust-ingest-token-0123456789abcdef";
const VIEWER_TOKEN = "trust-viewer-token-0123456789abcdef";
const WAIT_MS = 30_000;
const HOSTILE = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>`;
const CHANGE = "https://git.example/org/manifests/pull/42";

const app = makeImage({ layers: 1, layerSize: 900, mediaTypes: "oci", seed: "trust-app" });
const release = generateKeyPairSync("ec", { namedCurve: "P-256" });
const other = generateKeyPairSync("ec", { namedCurve: "P-256" });
const RELEASE_KEY_ID = keyIdOf(release.publicKey);
const MIRRORS = ["mirror-a/demo", "mirror-b/demo"];

let work: string;
let registry: TestRegistry;
let auditUrl: string;
let identity: string;
let stopServe: (() => Promise<number>) | undefined;
let serveErrors: () => string;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, waitMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface ApiVerdict {
  status: string;
  signers: string[];
  reasons: string[];
}
interface ApiMirror {
  mirror: string;
  verified: {
    state: string;
    signature?: ApiVerdict;
    attestation?: ApiVerdict & { approvers: string[]; changes: string[]; manifests: string[] };
  };
}

/** The search API's mirrors for `app:1.0`, as a script reads them with the viewer token. */
async function searchedMirrors(): Promise<ApiMirror[]> {
  const response = await fetch(`${auditUrl}/status/api/search?q=app:1.0`, {
    headers: { authorization: `Bearer ${VIEWER_TOKEN}` },
  });
  const body = (await response.json()) as { verification: string; hits: { mirrors: ApiMirror[] }[] };
  expect(body.verification).toBe("on");
  return body.hits[0]?.mirrors ?? [];
}

/** Waits until the auditor has judged every event and verified every mirror (`ready` holds). */
async function settled(
  what: string,
  ready: (mirrors: ApiMirror[]) => boolean,
  waitMs = WAIT_MS,
): Promise<ApiMirror[]> {
  let last: unknown;
  try {
    return await waitFor(
      what,
      async () => {
        const health = (await (await fetch(`${auditUrl}/healthz`)).json()) as { pendingEvents: number };
        const mirrors = await searchedMirrors();
        // How many events the registry delivered so far: tells a late notification (the registry
        // retries its deliveries) from a verdict that did not change.
        const received = (await (await fetch(`${auditUrl}/metrics`)).text())
          .split("\n")
          .filter((line) => line.startsWith("promoter_audit_events_total{"));
        last = { pendingEvents: health.pendingEvents, received, mirrors };
        if (health.pendingEvents !== 0) return undefined;
        const known = mirrors.length === 2 && mirrors.every((mirror) => mirror.verified.state === "known");
        return known && ready(mirrors) ? mirrors : undefined;
      },
      waitMs,
    );
  } catch (error) {
    // What the page last said, so a failure shows why.
    throw new Error(`${String(error)}; last: ${JSON.stringify(last)}`, { cause: error });
  }
}

function mirrorOf(mirrors: ApiMirror[], name: string): ApiMirror {
  const found = mirrors.find((mirror) => mirror.mirror === `${registry.host}/${name}`);
  if (!found) throw new Error(`no ${name} in ${JSON.stringify(mirrors)}`);
  return found;
}

async function searchOnPage(): Promise<string[]> {
  // A fresh page: the previous search's rows must not pass for this one's.
  await page.reload();
  await page.getByRole("navigation", { name: "Views" }).waitFor();
  await page.getByLabel("Image name, tag or digest").fill("app:1.0");
  await page.getByRole("button", { name: "Search" }).click();
  const rows = page.locator("article.hit tbody tr");
  await rows.first().waitFor();
  await expect.poll(() => page.locator("article.hit").textContent()).not.toContain("checking…");
  return rows.allTextContents();
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "promoter-status-trust-"));
  const auditPort = await findFreePort();
  auditUrl = `http://127.0.0.1:${auditPort}`;
  registry = await startRegistry({
    notifications: [
      { url: `${auditUrl}/events/${REGISTRY_PLACEHOLDER}`, headers: { Authorization: `Bearer ${TOKEN}` } },
    ],
  });
  identity = `${registry.host}/${MIRRORS[0]}/app`;
  const layout = path.join(work, "layout");
  await writeOciLayoutDirectly(layout, [{ content: app, tag: "app" }]);
  await pushWithSkopeo(layout, "app", `${registry.host}/staging/app:app`);
  await writeFile(
    path.join(work, "manifest.yaml"),
    [
      "registries:",
      `- name: ${registry.host}/staging`,
      "  src: true",
      ...MIRRORS.map((mirror) => `- name: ${registry.host}/${mirror}`),
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
      "--db",
      "audit.db",
      "--pending-grace",
      "1",
    ]),
    io,
  );
  stopServe = async () => {
    controller.abort();
    return done;
  };
  await waitFor("the audit server", async () => ((await fetch(`${auditUrl}/healthz`)).ok ? true : undefined));

  // The project's own signing: promote signs (and attests) the image at both mirrors.
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

  browser = await launchChromium();
  const context = await browser.newContext({ viewport: VIEWPORTS.desktop });
  page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
  await page.goto(`${auditUrl}/status`);
  await page.getByLabel("Viewer or acknowledger token").fill(VIEWER_TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Views" }).waitFor();
}, 120_000);

afterAll(async () => {
  await (browser as Browser | undefined)?.close();
  const status = await stopServe?.();
  if (status !== 0) console.error(serveErrors());
  await (registry as TestRegistry | undefined)?.stop();
  await rm(work, { recursive: true, force: true });
});

describe("the status page with trust settings (audit serve --public-key)", () => {
  it("shows promote's signature valid, by the release key, at both mirrors", async () => {
    const mirrors = await settled("both mirrors verified", () => true);
    for (const name of MIRRORS) {
      const mirror = mirrorOf(mirrors, name);
      expect(mirror.verified.signature).toMatchObject({ status: "valid", signers: [RELEASE_KEY_ID] });
      // promote attests too: no approvers outside a reviewed pull request.
      expect(mirror.verified.attestation).toMatchObject({ status: "valid", approvers: [] });
    }
    const rows = await searchOnPage();
    for (const row of rows) {
      expect(row).toContain("signature valid");
      expect(row).toContain(`by key ${RELEASE_KEY_ID.slice(0, "sha256:".length + 12)}…`);
      expect(row).not.toContain("not verified");
    }
    // The whole key id is the shortened one's title (signature and attestation, each mirror).
    expect(await page.locator(`article.hit code[title="${RELEASE_KEY_ID}"]`).count()).toBe(4);
    expect(await page.locator("#unverified-note").count()).toBe(0);
  });

  it(
    "after a push replaces one mirror's signature with another key's, shows it invalid there and valid on the other",
    async () => {
      // Another key over the right payload, and the release key over a payload naming markup.
      const forged = signatureManifest([
        keySignedLayer(other.privateKey, cosignPayload(identity, app.digest)),
        keySignedLayer(release.privateKey, cosignPayload(`${identity}${HOSTILE}`, app.digest)),
      ]);
      const sigTag = `sha256-${app.digest.slice("sha256:".length)}.sig`;
      await pushToRegistry(registry.host, `${MIRRORS[1]}/app`, [{ content: forged, tag: sigTag }], work);
      const mirrors = await settled(
        "the replaced signature verified again",
        (found) => mirrorOf(found, MIRRORS[1]!).verified.signature?.status === "invalid",
        // The registry's notification of the push may come late on a loaded machine: it retries
        // deliveries with a back-off (test/support/registry-harness.ts).
        3 * WAIT_MS,
      );
      expect(mirrorOf(mirrors, MIRRORS[0]!).verified.signature?.status).toBe("valid");
      const invalid = mirrorOf(mirrors, MIRRORS[1]!).verified.signature;
      expect(invalid?.signers).toEqual([]);
      // Quoted as JSON in the reason: its markup kept.
      expect(invalid?.reasons.join("\n")).toContain("<script>window.__pwned=2</script>");
      expect(invalid?.reasons.join("\n")).toContain("does not verify with the public key");

      const [first, second] = await searchOnPage();
      expect(first).toContain(`${registry.host}/${MIRRORS[0]}`);
      expect(first).toContain("signature valid");
      expect(second).toContain(`${registry.host}/${MIRRORS[1]}`);
      expect(second).toContain("signature invalid");
      expect(second).not.toContain("signature valid");
      // The identity the payload names is quoted in the reason, as text.
      expect(second).toContain("<script>window.__pwned=2</script>");
    },
    4 * WAIT_MS,
  );

  it("shows the approvers and change of a verified promotion record, and a report's claims only as reported", async () => {
    const { promotion } = await attestationsFor(
      release.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      {
        identity,
        digest: app.digest,
        review: {
          manifest: { path: "manifests/demo/promoter-manifest.yaml", line: 7 },
          pullRequest: {
            number: 42,
            url: CHANGE,
            author: "dave",
            approvers: [{ name: "carol" }, { name: HOSTILE }],
          },
        },
      },
      { mediaType: app.mediaType, digest: app.digest, size: app.bytes.length },
    );
    await pushReferrers(registry, `${MIRRORS[0]}/app`, [promotion], work);
    // Anyone with the ingest token can upload a report: its approvers are claims, not facts.
    const upload = await fetch(`${auditUrl}/status/api/reports`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({
        report: {
          schema: "image-promoter/promotion",
          version: 1,
          kind: "report",
          createdAt: new Date().toISOString(),
          edges: [
            {
              destination: `${registry.host}/${MIRRORS[1]}/app`,
              digest: app.digest,
              tag: "1.0",
              outcome: "copied",
            },
          ],
        },
        change: "https://git.example/org/manifests/pull/666",
        approvedBy: ["mallory"],
      }),
    });
    expect(upload.status).toBe(200);
    const mirrors = await settled(
      "the attestation with approvers verified",
      (found) => (mirrorOf(found, MIRRORS[0]!).verified.attestation?.approvers.length ?? 0) > 0,
    );
    expect(mirrorOf(mirrors, MIRRORS[0]!).verified.attestation).toMatchObject({
      status: "valid",
      signers: [RELEASE_KEY_ID],
      approvers: ["carol", HOSTILE],
      changes: [CHANGE],
    });
    // promote's own record names the line of manifest.yaml it promoted from.
    expect([...(mirrorOf(mirrors, MIRRORS[0]!).verified.attestation?.manifests ?? [])].sort()).toEqual([
      "manifest.yaml:9",
      "manifests/demo/promoter-manifest.yaml:7",
    ]);

    const [first, second] = await searchOnPage();
    expect(first).toContain("attestation valid");
    expect(first).toContain(`approved by carol, ${HOSTILE} (verified)`);
    expect(first).toContain("manifests/demo/promoter-manifest.yaml:7");
    const row = page.locator("article.hit tbody tr").first();
    expect(await row.getByRole("link", { name: CHANGE }).getAttribute("href")).toBe(CHANGE);
    // The uploaded claim is labelled as the job's, and never shown as verified.
    expect(second).toContain("Reported by the promotion job: approved by mallory");
    expect(second).not.toContain("(verified)");
    expect(second).toContain("signature invalid");
    // Markup from signed statements and payloads stayed text.
    expect(await page.locator("main img, main script").count()).toBe(0);
    expect(await page.evaluate("window.__pwned")).toBeUndefined();
    expect(pageErrors).toEqual([]);
    await screenshotBothWidths(page, "search-verified", { dark: true });
  });
});
