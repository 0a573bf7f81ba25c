import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STATUS_CSP } from "../../src/audit/status-page.js";
import { PromoterProcess, requireBuiltCli, runPromoter } from "../support/promoter-process.js";
import { launchChromium } from "../support/status-browser.js";
import { makeImage, writeOciLayoutDirectly } from "../support/test-images.js";

/**
 * Attacks on the auditor's status page (issue 14), against `promoter audit serve` as a child
 * process: what someone on the network without a token, a viewer holding only the viewer token,
 * and the holder of the notification token can do to the page, its JSON API and its sessions.
 * The browser side (text from outside shown as text, javascript: changes not linked) is driven in
 * test/e2e/status-page.test.ts.
 */

const INGEST_TOKEN = "attack-ingest-token-5e1f0a9b7c3d4e2f";
const VIEWER_TOKEN = "attack-viewer-token-8b2c6d0e4f1a3b5c";
const ALICE_TOKEN = "attack-alice-token-0c9d8e7f6a5b4c3d";

let work: string;
let server: PromoterProcess;
let url: string;

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "hostile-status-page-"));
  await writeFile(
    path.join(work, "manifest.yaml"),
    [
      "registries:",
      "- name: 127.0.0.1:1/staging",
      "  src: true",
      "- name: 127.0.0.1:1/prod",
      "images:",
      "- name: app",
      "  dmap:",
      `    "sha256:${"1".repeat(64)}": ["1.0"]`,
      "",
    ].join("\n"),
  );
  await writeFile(path.join(work, "ingest-token"), `${INGEST_TOKEN}\n`, { mode: 0o600 });
  await writeFile(path.join(work, "viewer-token"), `${VIEWER_TOKEN}\n`, { mode: 0o600 });
  await writeFile(path.join(work, "acknowledgers"), `alice ${ALICE_TOKEN}\n`, { mode: 0o600 });
  server = PromoterProcess.start(
    [
      "audit",
      "serve",
      "--manifest",
      "manifest.yaml",
      "--listen",
      "127.0.0.1:0",
      "--token-file",
      "ingest-token",
      "--viewer-token-file",
      "viewer-token",
      "--acknowledger-tokens-file",
      "acknowledgers",
      "--db",
      "audit.db",
    ],
    { cwd: work },
  );
  url = await server.waitFor((stdout) => {
    for (const line of stdout.split("\n")) {
      if (line.includes('"audit server listening"')) return (JSON.parse(line) as { url: string }).url;
    }
    return undefined;
  }, 60_000);
}, 120_000);

afterAll(async () => {
  await (server as PromoterProcess | undefined)?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Signs in as a browser does; returns the session cookie (`name=value`). */
async function signIn(token: string): Promise<string> {
  const response = await fetch(`${url}/status/session`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token }),
  });
  expect(response.status).toBe(200);
  await response.arrayBuffer();
  const cookie = response.headers.get("set-cookie") ?? "";
  return cookie.split(";")[0] ?? "";
}

async function sessionStatus(cookie: string): Promise<number> {
  const response = await fetch(`${url}/status/session`, { headers: { cookie } });
  await response.arrayBuffer();
  return response.status;
}

describe("the status page's responses", () => {
  it("carry the strict CSP and nosniff on every answer, refusals and errors included", async () => {
    const requests: [string, RequestInit?][] = [
      ["/status"],
      ["/status/status.js"],
      ["/status/api/search?q=app", { headers: { authorization: `Bearer ${VIEWER_TOKEN}` } }],
      // Refusals and errors: no token, a wrong route, a wrong method, a wrong content type,
      // an unparsable upload, a finding that does not exist.
      ["/status/api/search?q=%3Cscript%3E"],
      ["/status/api/findings", { headers: { authorization: `Bearer ${INGEST_TOKEN}` } }],
      ["/status/%3Cscript%3Ealert(1)%3C%2Fscript%3E"],
      ["/status/status.js", { method: "POST" }],
      ["/status/session", { method: "POST", headers: { "content-type": "text/html" }, body: "<b>" }],
      [
        "/status/api/reports",
        {
          method: "POST",
          headers: { authorization: `Bearer ${INGEST_TOKEN}`, "content-type": "application/json" },
          body: "<html><script>alert(1)</script>",
        },
      ],
      [
        "/status/api/findings/999999/acknowledge",
        {
          method: "POST",
          headers: { authorization: `Bearer ${ALICE_TOKEN}`, "content-type": "application/json" },
          body: JSON.stringify({ reason: "<script>alert(1)</script>" }),
        },
      ],
    ];
    const missing: string[] = [];
    for (const [route, init] of requests) {
      const response = await fetch(`${url}${route}`, init);
      await response.arrayBuffer();
      const what = `${init?.method ?? "GET"} ${route} (${response.status})`;
      // The page's whole policy, word for word (default-src 'none', frame-ancestors 'none', ...).
      if (response.headers.get("content-security-policy") !== STATUS_CSP) missing.push(`${what}: CSP`);
      if (response.headers.get("x-content-type-options") !== "nosniff") missing.push(`${what}: nosniff`);
    }
    expect(missing).toEqual([]);
  });
});

describe("sessions", () => {
  it("a viewer signing in over and over does not sign an acknowledger out", async () => {
    const alice = await signIn(ALICE_TOKEN);
    const firstViewer = await signIn(VIEWER_TOKEN);
    expect(await sessionStatus(alice)).toBe(200);
    // The viewer token is shared by everyone who may look: its holder can sign in as often as
    // they like, but only ever replaces viewer sessions (which stay bounded in number).
    for (let attempt = 0; attempt < 1100; attempt += 1) await signIn(VIEWER_TOKEN);
    expect(await sessionStatus(alice)).toBe(200);
    expect(await sessionStatus(firstViewer)).toBe(401);
  });
});

/** `POST /status/api/reports` with the notification token, as CI uploads a report. */
async function upload(body: unknown): Promise<{ status: number; text: string }> {
  const response = await fetch(`${url}/status/api/reports`, {
    method: "POST",
    headers: { authorization: `Bearer ${INGEST_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, text: await response.text() };
}

function reportOf(edges: readonly Record<string, unknown>[]): Record<string, unknown> {
  return { schema: "image-promoter/promotion", version: 1, kind: "report", edges };
}

describe("uploaded promotion reports", () => {
  it("the report of a promotion with a failed edge, as promote writes it, is taken and its error shown", async () => {
    // A real run that fails one edge: a staging blob whose bytes no longer match its digest.
    const content = makeImage({
      layers: 1,
      layerSize: 4096,
      mediaTypes: "oci",
      seed: "attack-status-failed",
    });
    const layer = content.layers[0];
    if (!layer) throw new Error("no layer");
    const staging = path.join(work, "failed", "staging", "app");
    await writeOciLayoutDirectly(staging, [{ content, tag: "v1" }]);
    const blob = path.join(staging, "blobs", "sha256", layer.descriptor.digest.slice("sha256:".length));
    const bytes = await readFile(blob);
    bytes[100] = (bytes[100] ?? 0) ^ 0xff;
    await writeFile(blob, bytes);
    await writeFile(
      path.join(work, "failed.yaml"),
      [
        "registries:",
        "- name: oci:failed/staging",
        "  src: true",
        "- name: oci:failed/prod",
        "images:",
        "- name: app",
        "  dmap:",
        `    "${content.digest}": ["v1"]`,
        "",
      ].join("\n"),
    );
    const run = await runPromoter(
      ["promote", "--manifest", "failed.yaml", "--confirm", "--quiet", "--report", "report.json"],
      { cwd: work },
    );
    expect(run.status, run.stderr).toBe(1);
    const report = JSON.parse(await readFile(path.join(work, "report.json"), "utf8")) as {
      edges: { outcome: string; error?: { message: string } }[];
    };
    // docs/promotion.md, "JSON plan and report": a failed edge's error is {code, message, side?}.
    const failed = report.edges.find((edge) => edge.outcome === "failed");
    expect(failed?.error?.message).toEqual(expect.any(String));
    const answer = await upload({ report, change: "https://github.com/example/repo/pull/1" });
    expect(answer).toMatchObject({ status: 200 });
    const promotions = await fetch(`${url}/status/api/promotions`, {
      headers: { authorization: `Bearer ${VIEWER_TOKEN}` },
    });
    expect(await promotions.text()).toContain(JSON.stringify(failed?.error?.message).slice(1, -1));
  });

  it("outcomes other than promote's are refused: they would become keys of every later view", async () => {
    const answer = await upload({
      report: reportOf([
        {
          destination: "127.0.0.1:1/prod/app",
          digest: `sha256:${"1".repeat(64)}`,
          tag: "1.0",
          outcome: `<img src=x onerror=alert(1)>${"x".repeat(3000)}`,
        },
      ]),
    });
    expect(answer.status).toBe(400);
    expect(answer.text).toContain("copied, tagged, unchanged, refused-tag-move, missing-source, failed");
  });

  it("the Promotions view stays small however large the uploaded reports are", async () => {
    // Long fields on as many edges as a report lists: this one made the view 16 MB; twenty
    // reports with every field at 4,096 characters made it fail for good ("Invalid string
    // length"), each viewing holding the auditor's event intake for seconds.
    const long = "x".repeat(4000);
    const edges = Array.from({ length: 2000 }, (_, index) => ({
      destination: `127.0.0.1:1/prod/${long}${index}`,
      digest: `sha256:${index.toString(16).padStart(64, "0")}`,
      tag: `t${index}`,
      outcome: "failed",
      reason: long,
    }));
    expect((await upload({ report: reportOf(edges) })).status).toBe(200);
    const promotions = await fetch(`${url}/status/api/promotions`, {
      headers: { authorization: `Bearer ${VIEWER_TOKEN}` },
    });
    expect(promotions.status).toBe(200);
    const text = await promotions.text();
    expect(text.length).toBeLessThan(8 * 1024 * 1024);
    const newest = (JSON.parse(text) as { reports: { edges: unknown[]; unlistedEdges: number }[] })
      .reports[0];
    // What is left out is counted, so the view can say so.
    expect((newest?.edges.length ?? 0) + (newest?.unlistedEdges ?? 0)).toBe(2000);
  });

  it("the page says how many edges the view left out", async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (error) => errors.push(error.message));
      await page.goto(`${url}/status`);
      await page.getByLabel("Viewer or acknowledger token").fill(VIEWER_TOKEN);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("link", { name: "Promotions", exact: true }).click();
      // The 2,000-edge report above: 500 listed, the rest counted.
      await page.getByText("1500 more edge(s) not listed here").waitFor();
      expect(await page.locator("#promotions-list tbody tr").count()).toBe(500);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
