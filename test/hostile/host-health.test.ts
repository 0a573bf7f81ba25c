import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultProxy } from "../support/fault-proxy.js";
import { HostileServer } from "../support/hostile-transport.js";
import { QuotaProxy } from "../support/quota-proxy.js";
import { expectClear, requireBuiltCli, runPromoter } from "../support/promoter-process.js";
import { findFreePort, startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { seedRegistry } from "../support/registry-judge.js";
import { selfSignedCertificate } from "../support/scripted-registry.js";
import { skopeoListTags } from "../support/skopeo.js";
import { makeImage, type TestContent } from "../support/test-images.js";

/**
 * Whole hosts, through `promoter` as a user runs it (issue 17). Item 1: a mirror where nothing
 * listens and a mirror that accepts connections and never answers fail each once, with their
 * first cause, on one line per host, while the healthy mirror gets every image; the silent one is
 * not asked again and again for every repository. Item 6: a registry on a loopback address that
 * speaks TLS (a real distribution with an openssl-made certificate) is recognised as such, and
 * `--https-registry` with `--registry-ca` reaches it. Item 4: a mirror behind a token-bucket
 * quota (a proxy in front of a real registry) is paced, not failed, and reported per host.
 */

const IMAGES = 6;

let work: string;
let staging: TestRegistry;
let healthy: TestRegistry;
let silent: HostileServer;
let closedPort: number;
let tlsRegistry: TestRegistry;
const images: TestContent[] = [];

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "host-health-"));
  const certificate = await selfSignedCertificate(["localhost"], ["127.0.0.1"]);
  await writeFile(path.join(work, "ca.pem"), certificate.cert);
  [staging, healthy, tlsRegistry] = await Promise.all([
    startRegistry(),
    startRegistry(),
    startRegistry({ tls: certificate }),
  ]);
  // Accepts the connection, reads the request, never answers.
  silent = await HostileServer.start(() => new Promise<void>(() => undefined));
  closedPort = await findFreePort();
  for (let index = 0; index < IMAGES; index++) {
    const content = makeImage({ layers: 1, layerSize: 512, mediaTypes: "oci", seed: `host-health-${index}` });
    images.push(content);
    await seedRegistry(staging.url, `staging/app${index}`, [{ content, tags: ["t1"] }]);
  }
}, 120_000);

afterAll(async () => {
  await (silent as HostileServer | undefined)?.stop();
  const registries: (TestRegistry | undefined)[] = [staging, healthy, tlsRegistry];
  await Promise.all(registries.flatMap((registry) => (registry ? [registry.stop()] : [])));
  if (work) await rm(work, { recursive: true, force: true });
});

function manifest(destinations: readonly string[]): string {
  return [
    "registries:",
    `- name: ${staging.host}/staging`,
    "  src: true",
    ...destinations.map((destination) => `- name: ${destination}`),
    "images:",
    ...images.flatMap((content, index) => [
      `- name: app${index}`,
      "  dmap:",
      `    "${content.digest}": ["t1"]`,
    ]),
    "",
  ].join("\n");
}

/** Lines of `text` that mention `host`. */
function linesNaming(text: string, host: string): string[] {
  return text.split("\n").filter((line) => line.includes(host));
}

describe("a per-host circuit breaker", { timeout: 120_000 }, () => {
  it("fails an unreachable and a silent mirror once each, with their cause, and promotes to the healthy one", async () => {
    const refused = `127.0.0.1:${closedPort}`;
    await writeFile(
      path.join(work, "mirrors.yaml"),
      manifest([`${refused}/prod`, `${silent.host}/prod`, `${healthy.host}/prod`]),
    );
    const run = await runPromoter(
      [
        "promote",
        "--manifest",
        "mirrors.yaml",
        "--confirm",
        "--registry-timeout",
        "1",
        "--max-requests-per-host",
        "2",
        "--report",
        "report.json",
      ],
      { cwd: work, timeoutMs: 100_000 },
    );
    expectClear(run, 1, /unreachable/);

    // The healthy mirror got every image.
    for (let index = 0; index < IMAGES; index++) {
      expect(await skopeoListTags(`docker://${healthy.host}/prod/app${index}`)).toEqual(["t1"]);
    }

    // One line per failed host in the log, with the first cause; none per repository.
    const refusedLines = linesNaming(run.stderr, refused);
    expect(refusedLines.filter((line) => line.includes("could not read"))).toEqual([]);
    expect(refusedLines.filter((line) => line.startsWith("promoter: warn: "))).toHaveLength(1);
    expect(refusedLines.join("\n")).toMatch(/is unreachable: network error: ECONNREFUSED/);
    const silentLines = linesNaming(run.stderr, silent.host);
    expect(silentLines.filter((line) => line.includes("could not read"))).toEqual([]);
    expect(silentLines.filter((line) => line.startsWith("promoter: warn: "))).toHaveLength(1);
    expect(silentLines.join("\n")).toMatch(/is unreachable: timed out: no response headers in time/);
    // And one summary line per host at the end.
    expect(run.stderr.match(/^promoter promote: registry host .*$/gm)).toHaveLength(2);

    // The silent mirror was asked only by the requests in flight before its circuit opened (two
    // at a time, the per-host limit), not by five attempts for every repository (30).
    expect(silent.requests.length).toBeLessThanOrEqual(4);

    // The report names the failed hosts with their cause.
    const report = JSON.parse(await readFile(path.join(work, "report.json"), "utf8")) as {
      requests: Record<string, { total: number; unreachable?: { code: string; requestsNotSent: number } }>;
      summary: { outcomes: Record<string, number> };
    };
    expect(report.requests[refused]?.unreachable?.code).toBe("registry-network");
    expect(report.requests[refused]?.unreachable?.requestsNotSent).toBeGreaterThan(0);
    expect(report.requests[silent.host]?.unreachable?.code).toBe("registry-timeout");
    expect(report.requests[healthy.host]?.unreachable).toBeUndefined();
    expect(report.summary.outcomes.copied).toBe(IMAGES);
  });
});

describe("a mirror that goes silent in the middle of the copy", { timeout: 120_000 }, () => {
  it("fails its remaining copies at once, without a retry for every blob", async () => {
    const mirror = await startRegistry();
    const proxy = await FaultProxy.start({ upstream: mirror.url });
    try {
      // The plan's HEADs pass; every upload finds a mirror that accepts connections and says
      // nothing.
      proxy.setRules([{ name: "silent", method: ["POST", "PUT", "PATCH"], fault: { kind: "stall" } }]);
      await writeFile(path.join(work, "midway.yaml"), manifest([`${proxy.host}/midway`]));
      const run = await runPromoter(
        ["promote", "--manifest", "midway.yaml", "--confirm", "--registry-timeout", "1"],
        { cwd: work, timeoutMs: 100_000 },
      );
      expectClear(run, 1, /is unreachable/);
      const lines = linesNaming(run.stderr, proxy.host);
      expect(lines.filter((line) => line.startsWith("promoter: warn: registry host"))).toHaveLength(1);
      // At most the uploads that timed out before the circuit opened are tried again by the copy
      // engine (48 "retrying" lines before it knew an open circuit is not worth retrying).
      expect(run.stderr.match(/retrying blob upload/g)?.length ?? 0).toBeLessThanOrEqual(2);
      // Only the uploads in flight when it opened (at most the per-host limit of 16) reached it.
      const stalled = proxy.events.filter((event) => event.fault === "silent").length;
      expect(stalled).toBeLessThanOrEqual(16);
    } finally {
      await proxy.stop();
      await mirror.stop();
    }
  });
});

describe("a TLS registry on a loopback address", { timeout: 120_000 }, () => {
  it("is recognised as speaking TLS, and --https-registry with --registry-ca reaches it", async () => {
    await writeFile(path.join(work, "tls.yaml"), manifest([`${tlsRegistry.host}/prod`]));
    const plain = await runPromoter(["promote", "--manifest", "tls.yaml"], { cwd: work });
    expectClear(
      plain,
      1,
      new RegExp(
        `${tlsRegistry.host} speaks TLS, not plain HTTP: reach it over HTTPS with --https-registry ${tlsRegistry.host}`.replaceAll(
          ".",
          "\\.",
        ),
      ),
    );
    expect(`${plain.stdout}${plain.stderr}`).not.toMatch(/HTTP 400/);

    // Without the CA, HTTPS is tried and the certificate refused, once for the host.
    const untrusted = await runPromoter(
      ["promote", "--manifest", "tls.yaml", "--https-registry", tlsRegistry.host],
      { cwd: work },
    );
    expectClear(untrusted, 1, /is unreachable: network error: (DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED)/);

    const run = await runPromoter(
      [
        "promote",
        "--manifest",
        "tls.yaml",
        "--confirm",
        "--https-registry",
        tlsRegistry.host,
        "--registry-ca",
        "ca.pem",
      ],
      { cwd: work },
    );
    expectClear(run, 0);
    expect(run.stdout).not.toMatch(/https-registry/);
    for (let index = 0; index < IMAGES; index++) {
      expect(await skopeoListTags(`docker://${tlsRegistry.host}/prod/app${index}`)).toEqual(["t1"]);
    }
    // Every request went over TLS: distribution logs a plain-HTTP request as a TLS handshake error.
    expect(tlsRegistry.logs().match(/"PUT \/v2\/prod\/app\d\/manifests\/t1 HTTP/g)?.length).toBe(IMAGES);
  });
});

interface QuotaReportJson {
  requests: Record<
    string,
    {
      total: number;
      quota?: { throttledResponses: number; waitedMs: number; refusedRequests: number };
    }
  >;
  summary: { outcomes: Record<string, number> };
}

describe("registry quotas", { timeout: 180_000 }, () => {
  const proxies: QuotaProxy[] = [];
  let quotaRegistry: TestRegistry;
  beforeAll(async () => {
    quotaRegistry = await startRegistry();
  });
  afterAll(async () => {
    await Promise.all(proxies.map((proxy) => proxy.stop()));
    await (quotaRegistry as TestRegistry | undefined)?.stop();
  });

  async function promoteThrough(
    proxy: QuotaProxy,
    name: string,
  ): Promise<{ run: Awaited<ReturnType<typeof runPromoter>>; report: QuotaReportJson }> {
    proxies.push(proxy);
    await writeFile(
      path.join(work, `${name}.yaml`),
      manifest([`${proxy.host}/${name}`, `${healthy.host}/${name}`]),
    );
    const run = await runPromoter(
      ["promote", "--manifest", `${name}.yaml`, "--confirm", "--report", `${name}.json`],
      { cwd: work, timeoutMs: 150_000 },
    );
    const report = JSON.parse(await readFile(path.join(work, `${name}.json`), "utf8")) as QuotaReportJson;
    return { run, report };
  }

  async function expectComplete(registry: string, name: string): Promise<void> {
    for (let index = 0; index < IMAGES; index++) {
      expect(await skopeoListTags(`docker://${registry}/${name}/app${index}`)).toEqual(["t1"]);
    }
  }

  it("slows a host that answers 429 for the rest of the run, completes it, and says how long it waited", async () => {
    const proxy = await QuotaProxy.start({ upstream: quotaRegistry.url, capacity: 2, refillPerSecond: 8 });
    const { run, report } = await promoteThrough(proxy, "throttled");
    expectClear(run, 0);
    await expectComplete(quotaRegistry.host, "throttled");
    await expectComplete(healthy.host, "throttled");
    expect(proxy.throttled).toBeGreaterThan(0);
    const quota = report.requests[proxy.host]?.quota;
    expect(quota?.throttledResponses).toBe(proxy.throttled);
    expect(quota?.waitedMs).toBeGreaterThan(0);
    // The other mirror was never held back.
    expect(report.requests[healthy.host]?.quota).toBeUndefined();
    // Once per host: when it first said no, and after the result.
    expect(linesNaming(run.stderr, proxy.host).filter((line) => line.includes("answered 429"))).toHaveLength(
      1,
    );
    expect(run.stderr).toMatch(
      new RegExp(
        `^promoter promote: registry host ${proxy.host.replaceAll(".", "\\.")}: quota: waited \\d+\\.\\d s in all, ${proxy.throttled} answers? 429`,
        "m",
      ),
    );
  });

  it("spends an advertised budget evenly and keeps a reserve", async () => {
    const proxy = await QuotaProxy.start({
      upstream: quotaRegistry.url,
      capacity: 20,
      refillPerSecond: 5,
      advertise: true,
    });
    const { run, report } = await promoteThrough(proxy, "budget");

    expectClear(run, 0);
    await expectComplete(quotaRegistry.host, "budget");
    // Paced by what the registry said was left, the run never ran the bucket dry.
    expect(proxy.throttled).toBe(0);
    // The reserve: a tenth of the advertised limit of 20.
    expect(proxy.lowestRemaining).toBeGreaterThanOrEqual(2);
    expect(report.requests[proxy.host]?.quota?.waitedMs).toBeGreaterThan(0);
  });

  it("fails, never reports success, when a quota is spent for longer than a run waits", async () => {
    const proxy = await QuotaProxy.start({
      upstream: quotaRegistry.url,
      capacity: 3,
      refillPerSecond: 0.001,
      retryAfterSeconds: 600,
    });
    const { run, report } = await promoteThrough(proxy, "spent");
    expectClear(run, 1, /quota/);
    // The other mirror is complete; this one is reported incomplete.
    await expectComplete(healthy.host, "spent");
    expect(report.summary.outcomes.failed).toBeGreaterThan(0);
    const quota = report.requests[proxy.host]?.quota;
    expect(quota?.throttledResponses).toBeGreaterThan(0);
    expect(quota?.refusedRequests).toBeGreaterThan(0);
    expect(run.stderr).toMatch(/not sent \(quota spent for longer than a run waits\)/);
  });
});
