import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bundleReferrerFor,
  cosignSignatureFor,
  nestedIndex,
  pubSubPush,
  pushWithHostHeader,
  withSubject,
} from "../support/hostile-auditor.js";
import { expectClear, PromoterProcess, requireBuiltCli, runPromoter } from "../support/promoter-process.js";
import {
  findFreePort,
  REGISTRY_PLACEHOLDER,
  startRegistry,
  type TestRegistry,
} from "../support/registry-harness.js";
import { skopeoCopy } from "../support/skopeo.js";
import { allManifests, makeImage, makeIndex, type TestContent } from "../support/test-images.js";
import { pollUntil } from "../support/poll.js";

/**
 * The auditor has no blind spots (issue "Blind spots"): `promoter audit serve` as a child
 * process, two real distribution registries sending their real notifications, and the attacks
 * of the issue, each asserting the violation and its reason.
 *
 * Registry A notifies `POST /events/<its host>` (the endpoint names the registry); registry B
 * still notifies the old `POST /events` and `audit serve` is given no `--registry-host`, so
 * nothing but the client's Host header would say which registry B's events are about.
 */

const TOKEN = "hostile-audit-ingest-4d2a8c61e0f3b7d9";
const READER_TOKEN = "hostile-audit-reader-9e1b3f5a7c2d4e60";
const PENDING_GRACE_SECONDS = 2;
const WAIT_MS = 45_000;

const app = makeImage({ layers: 1, layerSize: 1024, mediaTypes: "oci", seed: "hostile-audit-app" });
const rogue = makeImage({ layers: 1, layerSize: 900, mediaTypes: "oci", seed: "hostile-audit-rogue" });
/** An image six indexes deep: copy follows indexes 8 levels deep, so a promotion copies it. */
const deepImage = makeImage({ layers: 1, layerSize: 300, mediaTypes: "oci", seed: "hostile-audit-deep" });
const DEEP_LEVELS = 6;
const deep = nestedIndex(deepImage, DEEP_LEVELS);

interface Finding {
  verdict: string;
  rule: string;
  action: string;
  repository: string;
  digest: string | null;
  tag: string | null;
  reason: string;
  parent: string | null;
  subject: string | null;
  eventId: string;
  source: string;
}

let work: string;
let registry: TestRegistry;
let legacy: TestRegistry;
let auditUrl: string;
let serve: PromoterProcess | undefined;

const hex = (content: TestContent): string => content.digest.slice("sha256:".length);
const prod = (host: string, image: string): string => `${host}/prod/${image}`;

async function findings(query = ""): Promise<Finding[]> {
  const response = await fetch(`${auditUrl}/findings?limit=500${query}`, {
    headers: { authorization: `Bearer ${READER_TOKEN}` },
  });
  if (response.status !== 200) throw new Error(`GET /findings: ${response.status}`);
  return ((await response.json()) as { findings: Finding[] }).findings;
}

async function pendingEvents(): Promise<number> {
  const response = await fetch(`${auditUrl}/healthz`);
  return ((await response.json()) as { pendingEvents: number }).pendingEvents;
}

/** Polls until `probe` gives a value; the failure names what was awaited and what the auditor said. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  return pollUntil(what, probe, {
    timeoutMs: WAIT_MS,
    describeState: async () =>
      `findings:\n${JSON.stringify(await findings().catch(() => []), null, 1)}\n${serve?.stdout.slice(-4000) ?? ""}`,
  });
}

/** The finding that matches, once it is there. */
function findingOf(what: string, match: (finding: Finding) => boolean): Promise<Finding> {
  return waitFor(what, async () => (await findings()).find(match));
}

async function post(
  route: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${auditUrl}${route}`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

function manifestText(registries: readonly string[], images: Record<string, TestContent>): string {
  return [
    "registries:",
    `- name: ${registry.host}/staging`,
    "  src: true",
    ...registries.map((name) => `- name: ${name}`),
    "images:",
    ...Object.entries(images).flatMap(([name, content]) => [
      `- name: ${name}`,
      "  dmap:",
      `    "${content.digest}": ["1.0"]`,
    ]),
    "",
  ].join("\n");
}

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "hostile-auditor-"));
  const auditPort = await findFreePort();
  auditUrl = `http://127.0.0.1:${auditPort}`;
  const headers = { Authorization: `Bearer ${TOKEN}` };
  registry = await startRegistry({
    notifications: [{ url: `${auditUrl}/events/${REGISTRY_PLACEHOLDER}`, headers }],
  });
  legacy = await startRegistry({ notifications: [{ url: `${auditUrl}/events`, headers }] });
  await pushWithHostHeader(registry.url, registry.host, "staging/app", app, "1.0");
  await pushWithHostHeader(registry.url, registry.host, "staging/deep", deep, "1.0");
  await writeFile(
    path.join(work, "manifest.yaml"),
    manifestText([`${registry.host}/prod`, `${legacy.host}/prod`], { app, deep }),
  );
  // What `promote` is asked to copy in the index-depth test: the deep image, into A only.
  await writeFile(path.join(work, "deep.yaml"), manifestText([`${registry.host}/prod`], { deep }));
  await writeFile(path.join(work, "token"), `${TOKEN}\n`, { mode: 0o600 });
  await writeFile(path.join(work, "reader-token"), `${READER_TOKEN}\n`, { mode: 0o600 });
  serve = PromoterProcess.start(
    [
      "audit",
      "serve",
      "--manifest",
      "manifest.yaml",
      "--listen",
      `127.0.0.1:${auditPort}`,
      "--token-file",
      "token",
      "--reader-token-file",
      "reader-token",
      "--db",
      "audit.db",
      "--pending-grace",
      String(PENDING_GRACE_SECONDS),
      "--log-level",
      "debug",
    ],
    { cwd: work },
  );
  await serve.waitFor((stdout) => (stdout.includes('"audit server listening"') ? true : undefined), 60_000);
  // Promoted honestly, verified: what the attacks below then overwrite or hang things on.
  await skopeoCopy(`docker://${registry.host}/staging/app:1.0`, `docker://${prod(registry.host, "app")}:1.0`);
  await findingOf(
    "the promoted tag",
    (finding) => finding.repository === prod(registry.host, "app") && finding.tag === "1.0",
  );
}, 180_000);

afterAll(async () => {
  expect(await serve?.stop()).toBe(0);
  await registry.stop();
  await legacy.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("which registry an event is about", () => {
  it("is the registry whose endpoint the notification came to, whatever Host the pusher sent", async () => {
    const repository = prod(registry.host, "app");
    const localhost = registry.host.replace("127.0.0.1", "localhost");
    // Overwrite the promoted tag and add a tag, telling the registry it is someone else.
    await pushWithHostHeader(registry.url, "not-production.example", "prod/app", rogue, "1.0");
    await pushWithHostHeader(registry.url, "not-production.example", "prod/app", rogue, "spoofed");
    await pushWithHostHeader(registry.url, localhost, "prod/app", rogue, "spoofed-localhost");

    const overwritten = await findingOf(
      "the overwritten promoted tag",
      (finding) =>
        finding.repository === repository && finding.tag === "1.0" && finding.digest === rogue.digest,
    );
    expect(overwritten).toMatchObject({ verdict: "violation", rule: "tag-points-elsewhere" });
    expect(overwritten.reason).toContain("not-production.example");
    const added = await findingOf("the added tag", (finding) => finding.tag === "spoofed");
    expect(added).toMatchObject({ verdict: "violation", rule: "unexpected-tag", repository });
    const viaLocalhost = await findingOf("the tag pushed as localhost", (f) => f.tag === "spoofed-localhost");
    expect(viaLocalhost).toMatchObject({ verdict: "violation", rule: "unexpected-tag", repository });
    expect(viaLocalhost.reason).toContain(localhost);
  });

  it("cannot be told by the Host header alone: such events are violations, never ignored", async () => {
    await pushWithHostHeader(legacy.url, "not-production.example", "prod/app", rogue, "evil");
    const unattributed = await findingOf("the push to the registry on POST /events", (f) => f.tag === "evil");
    expect(unattributed).toMatchObject({ verdict: "violation", rule: "unattributed-event", action: "push" });
    expect(unattributed.reason).toMatch(/POST \/events/);
    expect(unattributed.reason).toContain("not-production.example");
  });
});

describe("attachments of promoted digests", () => {
  const repository = (): string => prod(registry.host, "app");
  const signatureTag = `sha256-${hex(app)}.sig`;

  it("are verified when they are signatures and bundles", async () => {
    const signature = cosignSignatureFor(app.descriptor, "honest");
    const bundle = bundleReferrerFor(app.descriptor, "honest");
    await pushWithHostHeader(registry.url, registry.host, "prod/app", signature, signatureTag);
    await pushWithHostHeader(registry.url, registry.host, "prod/app", bundle, bundle.digest);
    expect(
      await findingOf("the signature tag", (f) => f.tag === signatureTag && f.digest === signature.digest),
    ).toMatchObject({ verdict: "verified", rule: "attached-artifact-tag", subject: app.digest });
    expect(await findingOf("the bundle referrer", (f) => f.digest === bundle.digest)).toMatchObject({
      verdict: "verified",
      rule: "referrer-of-promoted-digest",
      subject: app.digest,
    });
  });

  it("are violations when they are runnable images under a signature tag or with a subject", async () => {
    const disguisedReferrer = withSubject(rogue, app.descriptor);
    const disguisedIndex = makeIndex([rogue], { mediaType: "oci" });
    await pushWithHostHeader(registry.url, registry.host, "prod/app", rogue, signatureTag);
    await pushWithHostHeader(
      registry.url,
      registry.host,
      "prod/app",
      disguisedReferrer,
      disguisedReferrer.digest,
    );
    await pushWithHostHeader(registry.url, registry.host, "prod/app", disguisedIndex, `sha256-${hex(app)}`);

    const asSignature = await findingOf(
      "the image under the signature tag",
      (f) => f.tag === signatureTag && f.digest === rogue.digest,
    );
    expect(asSignature).toMatchObject({
      verdict: "violation",
      rule: "not-an-attachment",
      repository: repository(),
    });
    expect(asSignature.reason).toMatch(/runnable image/);
    const asReferrer = await findingOf(
      "the image with a subject",
      (f) => f.digest === disguisedReferrer.digest,
    );
    expect(asReferrer).toMatchObject({
      verdict: "violation",
      rule: "not-an-attachment",
      subject: app.digest,
    });
    expect(asReferrer.reason).toMatch(/runnable image/);
    const asReferrersIndex = await findingOf(
      "the index under the referrers tag",
      (f) => f.tag === `sha256-${hex(app)}`,
    );
    expect(asReferrersIndex).toMatchObject({ verdict: "violation", rule: "not-an-attachment" });
    expect(asReferrersIndex.reason).toMatch(/runnable image/);
  });
});

describe("duplicate suppression", () => {
  it("keys on the content: a forged message cannot drop the real one by taking its id", async () => {
    const repository = prod(registry.host, "app");
    // The forged message takes the id first, with content that is verified.
    const forged = pubSubPush("900001", {
      action: "INSERT",
      digest: `${repository}@${app.digest}`,
      tag: `${repository}:1.0`,
    });
    expect((await post("/pubsub", forged)).json).toMatchObject({ accepted: 1 });
    // Then the real change, and its notification with the same id.
    await pushWithHostHeader(registry.url, registry.host, "prod/app", rogue, "pubsub-rogue");
    const real = pubSubPush("900001", {
      action: "INSERT",
      digest: `${repository}@${rogue.digest}`,
      tag: `${repository}:pubsub-rogue`,
    });
    expect((await post("/pubsub", real)).json).toMatchObject({ accepted: 1, duplicates: 0 });
    const judged = await findingOf(
      "the real Pub/Sub message",
      (f) => f.source === "pubsub" && f.tag === "pubsub-rogue",
    );
    expect(judged).toMatchObject({ verdict: "violation", rule: "unexpected-tag" });
    // A redelivery of the very same message is still recorded once.
    expect((await post("/pubsub", real)).json).toMatchObject({ accepted: 0, duplicates: 1 });

    // The same for distribution event ids.
    const event = (tag: string, digest: string) => ({
      events: [
        {
          id: "4f1c2b9e-0000-4000-8000-000000000001",
          timestamp: "2026-01-31T12:00:00Z",
          action: "push",
          target: { mediaType: rogue.mediaType, digest, tag, repository: "prod/app" },
          request: { host: registry.host },
        },
      ],
    });
    expect((await post(`/events/${registry.host}`, event("1.0", app.digest))).json).toMatchObject({
      accepted: 1,
    });
    expect((await post(`/events/${registry.host}`, event("forged-id", rogue.digest))).json).toMatchObject({
      accepted: 1,
      duplicates: 0,
    });
    expect(await findingOf("the event with a reused id", (f) => f.tag === "forged-id")).toMatchObject({
      verdict: "violation",
      rule: "unexpected-tag",
    });
  });
});

describe("index depth", () => {
  it("is one limit: what promote copies from a deep index, the auditor explains as its children", async () => {
    const run = await runPromoter(["promote", "--manifest", "deep.yaml", "--confirm", "--quiet"], {
      cwd: work,
      timeoutMs: 120_000,
    });
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    const repository = prod(registry.host, "deep");
    const digests = allManifests(deep).map((manifest) => manifest.digest);
    const all = await waitFor("a finding for every manifest of the deep index", async () => {
      const current = (await findings()).filter((finding) => finding.repository === repository);
      const judged = new Set(current.map((finding) => finding.digest));
      if (!digests.every((digest) => judged.has(digest))) return undefined;
      return (await pendingEvents()) === 0 ? current : undefined;
    });
    expect(all.filter((finding) => finding.verdict !== "verified")).toEqual([]);
    expect(all.find((finding) => finding.digest === deepImage.digest)).toMatchObject({
      rule: "child-of-promoted-index",
      parent: deep.digest,
    });
  });
});

describe("audit serve start-up", () => {
  it.each([
    ["--thin-manifest-dir", "/nonexistent-manifests"],
    ["--manifest", "/nonexistent-manifests/promoter-manifest.yaml"],
  ])("with %s %s stops with one clear line and status 2", async (flag, value) => {
    const run = await runPromoter(
      ["audit", "serve", flag, value, "--listen", "127.0.0.1:0", "--token-file", "token", "--db", "start.db"],
      { cwd: work },
    );
    expectClear(run, 2, /nonexistent-manifests.*no such file or directory/);
    expect(run.stderr.trim().split("\n")).toHaveLength(1);
  });
});
