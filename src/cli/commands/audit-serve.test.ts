import { createServer, type Server } from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { captureIO } from "../../../test/support/cli.js";
import { allowingLoopbackRegistries } from "../../../test/support/local-registries.js";
import { cosignSignatureFor } from "../../../test/support/hostile-auditor.js";
import {
  findFreePort,
  REGISTRY_PLACEHOLDER,
  startRegistry,
  type TestRegistry,
} from "../../../test/support/registry-harness.js";
import { skopeoCopy } from "../../../test/support/skopeo.js";
import {
  allBlobs,
  makeImage,
  makeIndex,
  pushWithSkopeo,
  writeOciLayoutDirectly,
} from "../../../test/support/test-images.js";
import { parseRegistryLocation, parseRepositoryPath, repositoryIn } from "../../reference/index.js";
import { createStoreProvider } from "../../registry/index.js";
import { runCli } from "../main.js";
import { commands } from "./index.js";

/**
 * `promoter audit serve` end to end (issue 7 section 3): a real distribution registry posts its
 * notifications to the auditor (with the bearer token header), content is pushed with skopeo and
 * with `promoter promote --confirm`, and findings, alerts and refusals are checked over HTTP.
 * The tests run in order and build on each other.
 */

const TOKEN = "audit-test-token-0123456789abcdef";
const READER_TOKEN = "audit-reader-token-0123456789abcdef";
const PENDING_GRACE_SECONDS = 1;
const WAIT_MS = 20_000;

const app = makeImage({ layers: 1, layerSize: 1024, mediaTypes: "oci", seed: "audit-app" });
const multi = makeIndex(
  [
    makeImage({ layers: 1, layerSize: 512, mediaTypes: "oci", seed: "audit-multi-amd64" }),
    makeImage({
      layers: 1,
      layerSize: 512,
      mediaTypes: "oci",
      seed: "audit-multi-arm64",
      platform: { architecture: "arm64", os: "linux" },
    }),
  ],
  { mediaType: "oci" },
);
const promoted = makeIndex(
  [
    makeImage({ layers: 1, layerSize: 512, mediaTypes: "oci", seed: "audit-promoted-amd64" }),
    makeImage({
      layers: 1,
      layerSize: 512,
      mediaTypes: "oci",
      seed: "audit-promoted-arm64",
      platform: { architecture: "arm64", os: "linux" },
    }),
  ],
  { mediaType: "oci" },
);
const rogue = makeImage({ layers: 1, layerSize: 700, mediaTypes: "oci", seed: "audit-rogue" });
const rogueWhileDown = makeImage({ layers: 1, layerSize: 700, mediaTypes: "oci", seed: "audit-rogue-2" });
/** A cosign signature manifest: its tag names what it is attached to, its layers what it is. */
const signature = cosignSignatureFor(app.descriptor, "audit-sig");
const tagless = makeImage({ layers: 1, layerSize: 300, mediaTypes: "oci", seed: "audit-tagless" });

interface Finding {
  verdict: string;
  action: string;
  repository: string;
  digest: string | null;
  tag: string | null;
  reason: string;
  rule: string;
  eventId: string;
  parent: string | null;
}

let work: string;
let registry: TestRegistry;
let auditPort: number;
let auditUrl: string;
let manifestFile: string;
let tokenFile: string;
let readerTokenFile: string;
let dbFile: string;
let layout: string;
let hook: Server;
let hookUrl: string;
const alerts: { text: string }[] = [];

interface RunningServe {
  done: Promise<number>;
  stop(): Promise<number>;
  out(): string;
}

let serve: RunningServe | undefined;

function startServe(): RunningServe {
  const controller = new AbortController();
  const { io, out, err } = captureIO({ cwd: work, signal: controller.signal });
  const done = runCli(
    allowingLoopbackRegistries([
      "audit",
      "serve",
      "--manifest",
      manifestFile,
      "--listen",
      `127.0.0.1:${auditPort}`,
      "--token-file",
      tokenFile,
      "--reader-token-file",
      readerTokenFile,
      "--db",
      dbFile,
      "--alert-webhook",
      hookUrl,
      "--pending-grace",
      String(PENDING_GRACE_SECONDS),
      "--reload-interval",
      "1",
    ]),
    io,
  );
  return {
    done: done.then((status) => {
      if (status !== 0) console.error(err());
      return status;
    }),
    stop: async () => {
      controller.abort();
      return done;
    },
    out,
  };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function findings(query = ""): Promise<Finding[]> {
  const response = await fetch(`${auditUrl}/findings?limit=500${query}`, {
    headers: { authorization: `Bearer ${READER_TOKEN}` },
  });
  if (response.status !== 200) throw new Error(`GET /findings: ${response.status}`);
  return ((await response.json()) as { findings: Finding[] }).findings;
}

async function health(): Promise<{ status: string; pendingEvents: number }> {
  const response = await fetch(`${auditUrl}/healthz`);
  return (await response.json()) as { status: string; pendingEvents: number };
}

/** Waits until a finding matches and nothing is pending; returns all findings. */
async function settledWith(what: string, match: (finding: Finding) => boolean): Promise<Finding[]> {
  return waitFor(what, async () => {
    const all = await findings();
    if (!all.some(match)) return undefined;
    return (await health()).pendingEvents === 0 ? all : undefined;
  });
}

function prod(repository: string): string {
  return `${registry.host}/prod/${repository}`;
}

/** Pushes the layout entry named `repository` to staging/<repository>:<repository>. */
async function stage(repository: string): Promise<void> {
  await pushWithSkopeo(layout, repository, `${registry.host}/staging/${repository}:${repository}`);
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "promoter-audit-e2e-"));
  auditPort = await findFreePort();
  auditUrl = `http://127.0.0.1:${auditPort}`;
  hook = createServer((request, response) => {
    let text = "";
    request.on("data", (chunk: Buffer) => (text += chunk.toString()));
    request.on("end", () => {
      alerts.push(JSON.parse(text) as { text: string });
      response.end("ok");
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
  registry = await startRegistry({
    notifications: [
      { url: `${auditUrl}/events/${REGISTRY_PLACEHOLDER}`, headers: { Authorization: `Bearer ${TOKEN}` } },
    ],
  });
  layout = path.join(work, "layout");
  await writeOciLayoutDirectly(layout, [
    { content: app, tag: "app" },
    { content: multi, tag: "multi" },
    { content: promoted, tag: "promoted" },
    { content: rogue, tag: "rogue" },
    { content: rogueWhileDown, tag: "rogue-2" },
    { content: signature, tag: "signature" },
  ]);
  await stage("app");
  await stage("multi");
  await stage("promoted");
  manifestFile = path.join(work, "manifest.yaml");
  await writeFile(
    manifestFile,
    [
      "registries:",
      `- name: ${registry.host}/staging`,
      "  src: true",
      `- name: ${registry.host}/prod`,
      "images:",
      "- name: app",
      "  dmap:",
      `    "${app.digest}": ["1.0"]`,
      "- name: multi",
      "  dmap:",
      `    "${multi.digest}": ["2.0"]`,
      "- name: promoted",
      "  dmap:",
      `    "${promoted.digest}": ["3.0"]`,
      "",
    ].join("\n"),
  );
  tokenFile = path.join(work, "token");
  await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  readerTokenFile = path.join(work, "reader-token");
  await writeFile(readerTokenFile, `${READER_TOKEN}\n`, { mode: 0o600 });
  dbFile = path.join(work, "audit.db");
  serve = startServe();
  await waitFor("the audit server", async () => ((await health()).status === "ok" ? true : undefined));
}, 120_000);

afterAll(async () => {
  await serve?.stop();
  await registry.stop();
  await new Promise((resolve) => hook.close(resolve));
  await rm(work, { recursive: true, force: true });
});

describe("promoter audit serve against a real registry", () => {
  it("verifies every event of content the manifests ask for, pushed by skopeo (children before the index)", async () => {
    await skopeoCopy(`docker://${registry.host}/staging/app:app`, `docker://${prod("app")}:1.0`);
    await skopeoCopy(`docker://${registry.host}/staging/multi:multi`, `docker://${prod("multi")}:2.0`);
    const all = await settledWith("the multi index tag", (finding) => finding.tag === "2.0");
    expect(all.map((finding) => [finding.verdict, finding.rule, finding.repository]).sort()).toEqual(
      [
        ["verified", "promoted-tag", prod("app")],
        ["verified", "child-of-promoted-index", prod("multi")],
        ["verified", "child-of-promoted-index", prod("multi")],
        ["verified", "promoted-tag", prod("multi")],
      ].sort(),
    );
    expect(
      all.filter((finding) => finding.rule === "child-of-promoted-index").map((finding) => finding.parent),
    ).toEqual([multi.digest, multi.digest]);
    expect(alerts).toEqual([]);
  });

  it("verifies all events of promoter promote --confirm", async () => {
    // An assertion, not a skip: removing the command must fail this test, not hide it.
    expect(commands.map((command) => command.words.join(" "))).toContain("promote");
    const before = (await findings()).length;
    const { io, err } = captureIO({ cwd: work });
    // The test registry is on loopback: the operator allows it (registry policy).
    const status = await runCli(
      ["promote", "--manifest", manifestFile, "--confirm", "--quiet", "--allow-registry", registry.host],
      io,
    );
    expect(status, err()).toBe(0);
    const all = await settledWith(
      "the promoted tag",
      (finding) => finding.repository === prod("promoted") && finding.tag === "3.0",
    );
    const fresh = all.slice(0, all.length - before);
    expect(fresh.length).toBeGreaterThanOrEqual(3);
    expect(fresh.filter((finding) => finding.verdict !== "verified")).toEqual([]);
    const children = promoted.manifests.map((child) => child.digest);
    for (const child of children) {
      expect(fresh.find((finding) => finding.digest === child)).toMatchObject({
        rule: "child-of-promoted-index",
        parent: promoted.digest,
      });
    }
    expect(alerts).toEqual([]);
  });

  it("verifies the signature and SBOM tags of promoted digests, also of an index's children", async () => {
    const appSig = `sha256-${app.digest.slice("sha256:".length)}.sig`;
    const childSbom = `sha256-${multi.manifests[1]!.digest.slice("sha256:".length)}.sbom`;
    await skopeoCopy(`oci:${layout}:signature`, `docker://${prod("app")}:${appSig}`);
    await skopeoCopy(`oci:${layout}:signature`, `docker://${prod("multi")}:${childSbom}`);
    const all = await settledWith("the SBOM tag", (finding) => finding.tag === childSbom);
    expect(all.find((finding) => finding.tag === appSig)).toMatchObject({
      verdict: "verified",
      rule: "attached-artifact-tag",
    });
    expect(all.find((finding) => finding.tag === childSbom)).toMatchObject({
      verdict: "verified",
      rule: "attached-artifact-tag",
      parent: multi.digest,
    });
    expect(all.filter((finding) => finding.verdict === "violation")).toEqual([]);
    expect(alerts).toEqual([]);
  });

  it("reports an image no manifest lists, pushed with skopeo: one violation, one alert", async () => {
    const before = await findings("&verdict=violation");
    await skopeoCopy(`oci:${layout}:rogue`, `docker://${prod("app")}:rogue`);
    const all = await settledWith("the rogue tag", (finding) => finding.tag === "rogue");
    const violations = all.filter((finding) => finding.verdict === "violation");
    expect(violations.length - before.length).toBe(1);
    expect(violations[0]).toMatchObject({
      action: "push",
      repository: prod("app"),
      digest: rogue.digest,
      tag: "rogue",
      rule: "unexpected-tag",
    });
    await waitFor("the alert", () => Promise.resolve(alerts.length > 0 ? true : undefined));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.text).toContain(`${prod("app")}:rogue@${rogue.digest}`);
    // Issue 17 item 8: the target once, not "push X: pushed X: ...".
    expect(alerts[0]?.text.split(`${prod("app")}:rogue@${rogue.digest}`)).toHaveLength(2);
    expect(alerts[0]?.text).toMatch(
      /^promoter audit: violation \(unexpected-tag\) pushed \S+:rogue@sha256:[0-9a-f]{64}: no manifest asks for tag rogue/,
    );
    const logLines = serve!
      .out()
      .split("\n")
      .filter((line) => line.includes('"audit violation"'));
    expect(logLines).toHaveLength(1);
    expect(JSON.parse(logLines[0]!)).toMatchObject({ level: "error", verdict: "violation", tag: "rogue" });
  });

  it("reports a promoted digest re-tagged by hand", async () => {
    await skopeoCopy(`docker://${prod("app")}:1.0`, `docker://${prod("app")}:extra`);
    const all = await settledWith("the extra tag", (finding) => finding.tag === "extra");
    expect(all.find((finding) => finding.tag === "extra")).toMatchObject({
      verdict: "violation",
      rule: "unexpected-tag",
      digest: app.digest,
    });
  });

  it("reconcile finds the hand-pushed image and the extra tag", async () => {
    const { io, out, err } = captureIO({ cwd: work });
    const status = await runCli(
      allowingLoopbackRegistries(["audit", "reconcile", "--manifest", manifestFile, "--output", "json"]),
      io,
    );
    expect(status, err()).toBe(1);
    const report = JSON.parse(out()) as {
      ok: boolean;
      issues: { kind: string; repository: string; tag: string | null; digest: string | null }[];
    };
    expect(report.ok).toBe(false);
    expect(report.issues.map((issue) => [issue.kind, issue.repository, issue.tag, issue.digest])).toEqual([
      ["unexpected-digest", prod("app"), null, rogue.digest],
      ["unexpected-tag", prod("app"), "extra", app.digest],
      ["unexpected-tag", prod("app"), "rogue", rogue.digest],
    ]);
    const markdown = captureIO({ cwd: work });
    expect(
      await runCli(
        allowingLoopbackRegistries([
          "audit",
          "reconcile",
          "--manifest",
          manifestFile,
          "--output",
          "markdown",
        ]),
        markdown.io,
      ),
    ).toBe(1);
    expect(markdown.out()).toContain("## Unexpected tags (2)");
    expect(markdown.out()).toContain("| `extra` |");
  });

  it("reports a tagless push nothing explains once its grace period is over", async () => {
    const provider = createStoreProvider({ env: {}, homeDirectory: work });
    const store = provider.repository(
      repositoryIn(parseRegistryLocation(`${registry.host}/prod`), parseRepositoryPath("app")),
    );
    for (const blob of allBlobs(tagless)) {
      await store.putBlob(blob.descriptor, Readable.from([blob.bytes]));
    }
    await store.putManifest(
      { digest: tagless.digest, mediaType: tagless.mediaType, bytes: tagless.bytes },
      tagless.digest,
    );
    await provider.close();
    const all = await settledWith("the tagless violation", (finding) => finding.digest === tagless.digest);
    expect(all.find((finding) => finding.digest === tagless.digest)).toMatchObject({
      verdict: "violation",
      rule: "unexpected-digest",
      tag: null,
    });
  });

  it("reports a deleted manifest", async () => {
    const response = await fetch(`${registry.url}/v2/prod/app/manifests/${rogue.digest}`, {
      method: "DELETE",
    });
    expect(response.status).toBe(202);
    // One event for the digest and one per tag that pointed at it.
    const all = await waitFor("both delete events", async () => {
      const current = await findings();
      return current.filter((finding) => finding.action === "delete").length >= 2 ? current : undefined;
    });
    const deletes = all.filter((finding) => finding.action === "delete");
    expect(deletes.every((finding) => finding.verdict === "violation" && finding.rule === "delete")).toBe(
      true,
    );
    expect(deletes.map((finding) => finding.digest ?? finding.tag).sort()).toEqual(
      ["rogue", rogue.digest].sort(),
    );
  });

  it("keeps findings over a restart, receives what happened meanwhile, and records a redelivery once", async () => {
    const before = await findings();
    expect(await serve!.stop()).toBe(0);
    // While the auditor is down the registry keeps the event and retries.
    await skopeoCopy(`oci:${layout}:rogue-2`, `docker://${prod("app")}:rogue-2`);
    serve = startServe();
    const after = await settledWith("the event sent while down", (finding) => finding.tag === "rogue-2");
    expect(after.slice(after.length - before.length)).toEqual(before);
    expect(after.length).toBe(before.length + 1);

    // The same notification twice (distribution retries until it is answered): recorded once.
    const notification = {
      events: [
        {
          id: "e2e-redelivered",
          timestamp: new Date().toISOString(),
          action: "push",
          target: { mediaType: app.mediaType, digest: app.digest, repository: "prod/app", tag: "again" },
          request: { host: registry.host },
        },
      ],
    };
    const deliver = async (): Promise<unknown> =>
      (
        await fetch(`${auditUrl}/events/${registry.host}`, {
          method: "POST",
          headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
          body: JSON.stringify(notification),
        })
      ).json();
    expect(await deliver()).toMatchObject({ accepted: 1, duplicates: 0 });
    expect(await deliver()).toMatchObject({ accepted: 0, duplicates: 1 });
    await settledWith("the delivered event", (finding) => finding.tag === "again");
    expect((await findings()).length).toBe(after.length + 1);
    const metrics = await (await fetch(`${auditUrl}/metrics`)).text();
    expect(metrics).toMatch(/^promoter_audit_events_total\{verdict="duplicate"\} [1-9]/m);
  });

  it("rejects requests without the token, oversized or malformed, records nothing, stays up", async () => {
    const before = (await findings()).length;
    const post = async (body: string, headers: Record<string, string>): Promise<number> =>
      (
        await fetch(`${auditUrl}/events`, {
          method: "POST",
          headers: { "content-type": "application/json", ...headers },
          body,
        })
      ).status;
    const auth = { authorization: `Bearer ${TOKEN}` };
    const forged = JSON.stringify({
      events: [
        {
          id: "forged",
          action: "delete",
          target: { digest: app.digest, repository: "prod/app" },
          request: { host: registry.host },
        },
      ],
    });
    expect(await post(forged, {})).toBe(401);
    expect(await post(forged, { authorization: "Bearer not-the-token-at-all-no" })).toBe(401);
    expect(await post(" ".repeat(2 * 1024 * 1024), auth)).toBe(413);
    expect(await post("{", auth)).toBe(400);
    expect(await post('{"events":[{}]}', auth)).toBe(400);
    expect(await post("[]", auth)).toBe(400);
    expect((await findings()).length).toBe(before);
    expect((await health()).status).toBe("ok");
  });

  it("prints the findings with promoter audit findings", async () => {
    const text = captureIO({ cwd: work });
    expect(await runCli(["audit", "findings", "--db", dbFile, "--verdict", "violation"], text.io)).toBe(1);
    expect(text.out()).toContain(`VIOLATION push ${prod("app")}:rogue@${rogue.digest}`);
    const json = captureIO({ cwd: work });
    expect(
      await runCli(["audit", "findings", "--db", dbFile, "--output", "json", "--limit", "2"], json.io),
    ).toBe(1);
    expect((JSON.parse(json.out()) as { findings: Finding[] }).findings).toHaveLength(2);
  });
});
