import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { captureIO } from "../support/cli.js";
import { cosignSignatureFor } from "../support/hostile-auditor.js";
import { allowingLoopbackRegistries } from "../support/local-registries.js";
import {
  findFreePort,
  REGISTRY_PLACEHOLDER,
  startRegistry,
  type TestRegistry,
} from "../support/registry-harness.js";
import { skopeoCopy } from "../support/skopeo.js";
import { launchChromium, screenshotBothWidths, VIEWPORTS } from "../support/status-browser.js";
import { makeImage, pushWithSkopeo, writeOciLayoutDirectly } from "../support/test-images.js";

/**
 * The auditor's status page in a real browser (issue 14): Debian's chromium driven by
 * playwright-core, against `promoter audit serve` (the real CLI) receiving the notifications of a
 * real distribution registry, after `promoter promote --confirm --report` and a rogue push by
 * skopeo. The tests run in order and build on each other; each view is screenshotted at phone and
 * desktop width into test-artifacts/status-page/ (git-ignored).
 */

const TOKEN = "status-ingest-token-0123456789abcdef";
const VIEWER_TOKEN = "status-viewer-token-0123456789abcdef";
const ALICE_TOKEN = "status-alice-token-0123456789abcdef";
const WAIT_MS = 20_000;
/** Text from outside that a careless page would run or render as markup. */
const HOSTILE = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>`;

const app = makeImage({ layers: 1, layerSize: 1024, mediaTypes: "oci", seed: "status-app" });
const rogue = makeImage({ layers: 1, layerSize: 700, mediaTypes: "oci", seed: "status-rogue" });
const signature = cosignSignatureFor(app.descriptor, "status-sig");
const signatureTag = `sha256-${app.digest.slice("sha256:".length)}.sig`;

let work: string;
let registry: TestRegistry;
let auditUrl: string;
let stopServe: (() => Promise<number>) | undefined;
let serveErrors: () => string;
let serveOutput: () => string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const MIRRORS = ["mirror-a/demo", "mirror-b/demo"];
/** Uncaught errors of the page's script (none expected). */
const pageErrors: string[] = [];

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface ApiFinding {
  tag: string | null;
  verdict: string;
  rule: string;
  seq: number;
  acknowledged: { by: string; reason: string } | null;
}

/** The page's own API, as a script would read it with the viewer token. */
async function apiFindings(verdict: string): Promise<ApiFinding[]> {
  const response = await fetch(`${auditUrl}/status/api/findings?verdict=${verdict}`, {
    headers: { authorization: `Bearer ${VIEWER_TOKEN}` },
  });
  return ((await response.json()) as { findings: ApiFinding[] }).findings;
}

async function pending(): Promise<number> {
  return ((await (await fetch(`${auditUrl}/healthz`)).json()) as { pendingEvents: number }).pendingEvents;
}

async function signIn(token: string): Promise<void> {
  await page.goto(`${auditUrl}/status`);
  await page.getByLabel("Viewer or acknowledger token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Views" }).waitFor();
}

async function openView(name: string): Promise<void> {
  await page.getByRole("link", { name, exact: true }).click();
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "promoter-status-e2e-"));
  const auditPort = await findFreePort();
  auditUrl = `http://127.0.0.1:${auditPort}`;
  registry = await startRegistry({
    notifications: [
      { url: `${auditUrl}/events/${REGISTRY_PLACEHOLDER}`, headers: { Authorization: `Bearer ${TOKEN}` } },
    ],
  });
  const layout = path.join(work, "layout");
  await writeOciLayoutDirectly(layout, [
    { content: app, tag: "app" },
    { content: rogue, tag: "rogue" },
    { content: signature, tag: "signature" },
  ]);
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
  await writeFile(path.join(work, "token"), `${TOKEN}\n`, { mode: 0o600 });
  await writeFile(path.join(work, "viewer-token"), `${VIEWER_TOKEN}\n`, { mode: 0o600 });
  await writeFile(path.join(work, "acknowledgers"), `# who may acknowledge\nalice ${ALICE_TOKEN}\n`, {
    mode: 0o600,
  });
  const controller = new AbortController();
  const { io, out, err } = captureIO({ cwd: work, signal: controller.signal });
  serveErrors = err;
  serveOutput = out;
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
      "--acknowledger-tokens-file",
      "acknowledgers",
      "--db",
      "audit.db",
      "--pending-grace",
      "1",
      "--reload-interval",
      "1",
    ]),
    io,
  );
  stopServe = async () => {
    controller.abort();
    return done;
  };
  await waitFor("the audit server", async () => ((await fetch(`${auditUrl}/healthz`)).ok ? true : undefined));
  browser = await launchChromium();
  context = await browser.newContext({ viewport: VIEWPORTS.desktop });
  page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
}, 120_000);

afterAll(async () => {
  await (browser as Browser | undefined)?.close();
  const status = await stopServe?.();
  if (status !== 0) console.error(serveErrors());
  await (registry as TestRegistry | undefined)?.stop();
  await rm(work, { recursive: true, force: true });
});

describe("the auditor's status page in a browser", () => {
  it("asks for the token with a form, keeps it out of the URL, and holds the session in an HttpOnly cookie", async () => {
    await page.goto(`${auditUrl}/status`);
    await page.getByLabel("Viewer or acknowledger token").fill("not-the-token-0123456789");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("alert").first().textContent()).toContain("not a viewer");
    await screenshotBothWidths(page, "sign-in");
    // With the keyboard alone: the token field has the focus, Enter signs in, Tab reaches the views.
    await page.goto(`${auditUrl}/status`);
    await page.getByLabel("Viewer or acknowledger token").waitFor();
    await page.keyboard.type(VIEWER_TOKEN);
    await page.keyboard.press("Enter");
    await page.getByRole("navigation", { name: "Views" }).waitFor();
    const focused = [await page.evaluate<string>("document.activeElement?.textContent ?? ''")];
    for (let step = 0; step < 2; step += 1) {
      await page.keyboard.press("Tab");
      focused.push(await page.evaluate<string>("document.activeElement?.textContent ?? ''"));
    }
    expect(focused).toEqual(["Search", "Promotions", "Findings"]);
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Viewer or acknowledger token").waitFor();
    await signIn(VIEWER_TOKEN);
    expect(page.url()).not.toContain(VIEWER_TOKEN);
    expect(page.url()).not.toContain("token");
    const cookies = await context.cookies();
    expect(cookies).toEqual([
      expect.objectContaining({
        name: "promoter_status",
        httpOnly: true,
        sameSite: "Strict",
        path: "/status",
      }),
    ]);
    expect(cookies[0]?.value).not.toContain(VIEWER_TOKEN);
    // Scripts on the page cannot read the session, and nothing was stored.
    expect(await page.evaluate("document.cookie")).toBe("");
    expect(await page.evaluate("JSON.stringify({ ...localStorage, ...sessionStorage })")).toBe("{}");
    expect(await page.getByText("Signed in as viewer").isVisible()).toBe(true);
  });

  it("search finds a promoted image and shows each mirror, its tag, signature and approval", async () => {
    const report = path.join(work, "report.json");
    const { io, err } = captureIO({ cwd: work });
    const promoted = await runCli(
      allowingLoopbackRegistries([
        "promote",
        "--manifest",
        "manifest.yaml",
        "--confirm",
        "--quiet",
        "--report",
        report,
      ]),
      io,
    );
    expect(promoted, err()).toBe(0);
    for (const mirror of MIRRORS) {
      await skopeoCopy(
        `oci:${path.join(work, "layout")}:signature`,
        `docker://${registry.host}/${mirror}/app:${signatureTag}`,
      );
    }
    // What CI does after the run: upload the report with the change and who approved it.
    const upload = await fetch(`${auditUrl}/status/api/reports`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({
        report: JSON.parse(await readFile(report, "utf8")) as unknown,
        change: "https://git.example/org/manifests/pull/42",
        approvedBy: ["bob"],
      }),
    });
    expect(upload.status).toBe(200);
    await waitFor("both signatures verified", async () => {
      const verified = await apiFindings("verified");
      const signatures = verified.filter((finding) => finding.tag === signatureTag);
      return signatures.length === 2 && (await pending()) === 0 ? true : undefined;
    });

    await openView("Search");
    await page.getByLabel("Image name, tag or digest").fill("app:1.0");
    await page.getByRole("button", { name: "Search" }).click();
    const hit = page.locator("article.hit");
    await hit.first().waitFor();
    expect(await hit.count()).toBe(1);
    const rows = hit.locator("tbody tr");
    expect(await rows.count()).toBe(2);
    for (const [index, mirror] of MIRRORS.entries()) {
      const text = await rows.nth(index).textContent();
      expect(text).toContain(`${registry.host}/${mirror}`);
      expect(text).toContain("present");
      expect(text).toContain("1.0");
      expect(text).toContain("signature seen, not verified");
      expect(text).not.toContain("none seen");
      // Without trust settings the report's claims are shown as the job's, never as verified.
      expect(text).toContain("Reported by the promotion job: approved by bob");
      expect(text).not.toContain("(verified)");
    }
    expect(await page.locator("#unverified-note").textContent()).toContain(
      "Signatures are not verified here.",
    );
    const change = hit.getByRole("link", { name: "https://git.example/org/manifests/pull/42" }).first();
    expect(await change.getAttribute("href")).toBe("https://git.example/org/manifests/pull/42");
    await screenshotBothWidths(page, "search");

    // By digest too, a prefix of it as people paste it.
    await page.getByLabel("Image name, tag or digest").fill(app.digest.slice(0, 19));
    await page.getByRole("button", { name: "Search" }).click();
    await expect.poll(() => page.locator("#search-status").textContent()).toContain(app.digest.slice(0, 19));
    expect(await page.locator("article.hit").count()).toBe(1);
  });

  it("shows recent promotions with their change and each edge's outcome", async () => {
    await openView("Promotions");
    const report = page.locator("article.report").first();
    await report.waitFor();
    const text = await report.textContent();
    expect(text).toContain("Approved by bob");
    expect(text).toContain("copied");
    expect(text).toContain(`${registry.host}/mirror-a/demo/app`);
    await screenshotBothWidths(page, "promotions");
  });

  it("shows a rogue push among the violations within seconds", async () => {
    await skopeoCopy(
      `oci:${path.join(work, "layout")}:rogue`,
      `docker://${registry.host}/mirror-a/demo/app:rogue`,
    );
    await openView("Findings");
    await waitFor("the rogue push on the page", async () => {
      await page.getByRole("button", { name: "Violations" }).click();
      const text = await page.locator("#findings-list").textContent();
      return text?.includes("rogue") === true ? true : undefined;
    });
    const row = page.locator("#findings-list tbody tr").filter({ hasText: "rogue" });
    const text = await row.textContent();
    expect(text).toContain("unexpected-tag");
    expect(text).toContain(registry.host);
    expect(text).toContain("mirror-a/demo/app");
    expect(text).toContain("not yet");
    // A viewer sees no way to acknowledge.
    expect(await row.getByRole("button", { name: "Acknowledge" }).count()).toBe(0);
  });

  it("acknowledging takes an acknowledger's token, records who and why, and a viewer cannot", async () => {
    const [rogueFinding] = (await apiFindings("violation")).filter((finding) => finding.tag === "rogue");
    expect(rogueFinding).toBeDefined();
    // The viewer's session cannot, even with its CSRF value, through the page's own fetch.
    const refused = await page.evaluate(async (seq) => {
      const session = (await (await fetch("/status/session")).json()) as { csrf: string };
      const response = await fetch(`/status/api/findings/${seq}/acknowledge`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-status-csrf": session.csrf },
        body: JSON.stringify({ reason: "viewer tries" }),
      });
      return response.status;
    }, rogueFinding?.seq);
    expect(refused).toBe(403);

    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Viewer or acknowledger token").waitFor();
    await signIn(ALICE_TOKEN);
    expect(await page.getByText("Signed in as alice").isVisible()).toBe(true);
    await openView("Findings");
    const row = page.locator("#findings-list tbody tr").filter({ hasText: "rogue" });
    await row.getByRole("button", { name: "Acknowledge" }).waitFor();
    await screenshotBothWidths(page, "findings", { dark: true });
    await row
      .getByLabel(`Why is finding ${rogueFinding?.seq} acceptable?`)
      .fill("load test image, deleted at 10:00");
    await row.getByRole("button", { name: "Acknowledge" }).click();
    await expect.poll(() => row.textContent()).toContain("alice: load test image, deleted at 10:00");
    const [recorded] = (await apiFindings("violation")).filter((finding) => finding.tag === "rogue");
    expect(recorded?.acknowledged).toMatchObject({
      by: "alice",
      reason: "load test image, deleted at 10:00",
    });
  });

  it("the matrix shows each image on each mirror of its project", async () => {
    await openView("Matrix");
    const table = page.locator("#matrix-table table");
    await table.waitFor();
    expect(await page.getByLabel("Project").inputValue()).toBe("demo");
    const header = await table.locator("thead").textContent();
    for (const mirror of MIRRORS) expect(header).toContain(`${registry.host}/${mirror}`);
    const cells = table.locator("tbody tr").filter({ hasText: "app" }).locator("td .cell");
    expect(await cells.allTextContents()).toEqual(["complete", "complete"]);
    await screenshotBothWidths(page, "matrix", { dark: true });
  });

  it("shows repository names, hosts and reasons from outside as text, never as markup", async () => {
    // A pusher's Host header is quoted in the violation's reason; a report names any destination.
    const event = {
      events: [
        {
          id: "hostile-1",
          timestamp: new Date().toISOString(),
          action: "push",
          target: {
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            repository: "mirror-b/demo/app",
            digest: rogue.digest,
            tag: "hostile",
            url: `http://${registry.host}/v2/mirror-b/demo/app/manifests/${rogue.digest}`,
          },
          request: { host: HOSTILE },
        },
      ],
    };
    const posted = await fetch(`${auditUrl}/events/${registry.host}`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(event),
    });
    expect(posted.status).toBe(200);
    const report = {
      report: {
        schema: "image-promoter/promotion",
        version: 1,
        kind: "report",
        createdAt: new Date().toISOString(),
        edges: [
          {
            destination: `${registry.host}/${HOSTILE}`,
            digest: rogue.digest,
            tag: "1.0",
            outcome: "failed",
            error: HOSTILE,
          },
        ],
      },
      change: "javascript:window.__pwned=3",
      approvedBy: [HOSTILE],
    };
    const uploaded = await fetch(`${auditUrl}/status/api/reports`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(report),
    });
    expect(uploaded.status).toBe(200);
    await waitFor("the hostile finding", async () =>
      (await apiFindings("violation")).some((finding) => finding.tag === "hostile") ? true : undefined,
    );

    await openView("Promotions");
    await page.reload();
    const promotion = page.locator("article.report").first();
    await promotion.waitFor();
    expect(await promotion.textContent()).toContain(HOSTILE);
    // A javascript: change is shown as text, not made a link.
    expect(await promotion.locator('a[href^="javascript"]').count()).toBe(0);
    expect(await promotion.textContent()).toContain("javascript:window.__pwned=3");

    await openView("Findings");
    const row = page.locator("#findings-list tbody tr").filter({ hasText: "hostile" });
    await row.waitFor();
    // The reason quotes the Host header (its quotes escaped): the markup in it is text on the page.
    expect(await row.textContent()).toContain("<script>window.__pwned=2</script>");
    expect(await page.locator("main img, main script").count()).toBe(0);
    expect(await page.evaluate("window.__pwned")).toBeUndefined();
    expect(pageErrors).toEqual([]);
    // No token reached the auditor's log, though every one was used and wrong ones were tried.
    const log = `${serveOutput()}${serveErrors()}`;
    expect(log).toContain("audit request refused");
    for (const token of [TOKEN, VIEWER_TOKEN, ALICE_TOKEN]) expect(log).not.toContain(token);
  });
});
