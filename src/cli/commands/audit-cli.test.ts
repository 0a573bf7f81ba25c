import { createServer, type Server } from "node:http";
import { mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { captureIO } from "../../../test/support/cli.js";
import { allowingLoopbackRegistries } from "../../../test/support/local-registries.js";
import { findFreePort } from "../../../test/support/registry-harness.js";
import { runCli } from "../main.js";
import { manifestOrigin, parseListen, readTokenFile } from "./audit-serve.js";

const TOKEN = "cli-test-token-0123456789abcdef";
const READER_TOKEN = "cli-reader-token-0123456789abcdef";
const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;

let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "promoter-audit-cli-"));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function manifestText(entries: Record<string, string[]>): string {
  return [
    "registries:",
    "- name: stage.example/staging",
    "  src: true",
    "- name: prod.example/images",
    "images:",
    "- name: app",
    "  dmap:",
    ...Object.entries(entries).map(([digest, tags]) => `    "${digest}": ${JSON.stringify(tags)}`),
    "",
  ].join("\n");
}

describe("audit command flags", () => {
  it("parses --listen", () => {
    expect(parseListen("127.0.0.1:8080")).toEqual({ host: "127.0.0.1", port: 8080 });
    expect(parseListen("[::1]:0")).toEqual({ host: "::1", port: 0 });
    expect(parseListen("audit.internal:9000")).toEqual({ host: "audit.internal", port: 9000 });
    for (const bad of ["8080", ":8080", "host:", "host:99999", "::1:80"])
      expect(() => parseListen(bad)).toThrow(/--listen/);
  });

  it("takes exactly one manifest input", () => {
    expect(manifestOrigin({ manifest: "m.yaml" })).toEqual({ kind: "manifest", file: "m.yaml" });
    expect(
      manifestOrigin({ "git-url": "https://example.invalid/r.git", branch: "main", path: "registry" }),
    ).toEqual({
      kind: "git",
      url: "https://example.invalid/r.git",
      branch: "main",
      path: "registry",
    });
    expect(() => manifestOrigin({})).toThrow(/exactly one/);
    expect(() => manifestOrigin({ manifest: "m", "thin-manifest-dir": "d" })).toThrow(/exactly one/);
    expect(() => manifestOrigin({ manifest: "m", branch: "main" })).toThrow(/--git-url/);
  });

  it("reads the token file and refuses weak tokens", async () => {
    const good = path.join(work, "good-token");
    await writeFile(good, `${TOKEN}\n`, { mode: 0o600 });
    expect(await readTokenFile(good)).toEqual({ token: TOKEN, looseMode: false });
    const loose = path.join(work, "loose-token");
    await writeFile(loose, TOKEN, { mode: 0o644 });
    expect((await readTokenFile(loose)).looseMode).toBe(true);
    const short = path.join(work, "short-token");
    await writeFile(short, "short");
    await expect(readTokenFile(short)).rejects.toThrow(/at least 16/);
    await expect(readTokenFile(path.join(work, "absent"))).rejects.toThrow(/--token-file/);
  });

  /** `audit serve` with every option it needs, usable but for what a case adds. */
  const SERVE_USABLE = ["audit", "serve", "--manifest", "m", "--listen", "127.0.0.1:1", "--token-file", "t"];

  it.each([
    [["audit", "serve", "--manifest", "m.yaml", "--token-file", "t"], /--listen/],
    [["audit", "serve", "--manifest", "m.yaml", "--listen", "127.0.0.1:1"], /--token-file/],
    [["audit", "serve", "--listen", "127.0.0.1:1", "--token-file", "t"], /exactly one/],
    [["audit", "serve", "--manifest", "m", "--listen", "x", "--token-file", "t"], /--listen must be/],
    [[...SERVE_USABLE, "--alert-webhook", "ftp://x"], /--alert-webhook/],
    [[...SERVE_USABLE, "--alert-webhook", "env://UNSET_HOOK_VARIABLE"], /UNSET_HOOK_VARIABLE is not set/],
    [[...SERVE_USABLE, "--alert-webhook", "http://h/", "--alert-webhook-file", "f"], /not both/],
    [
      [...SERVE_USABLE.slice(0, 2), "--git-url-file", "absent-url", ...SERVE_USABLE.slice(4)],
      /--git-url-file/,
    ],
    [[...SERVE_USABLE, "--registry-host", "a b"], /--registry-host/],
    [["audit", "reconcile"], /exactly one/],
    [["audit", "reconcile", "--manifest", "m", "--output", "html"], /--output/],
    [["audit", "findings", "--db", "absent.db"], /no findings database/],
    [["audit", "findings", "--db", "x", "--since", "soon"], /--since/],
  ])("refuses %j with exit 2", async (argv, message) => {
    const { io, err } = captureIO({ cwd: work });
    expect(await runCli(argv, io)).toBe(2);
    expect(err()).toMatch(message);
  });

  it("refuses a reader token that is the notification senders' token", async () => {
    await writeFile(path.join(work, "same-a"), TOKEN, { mode: 0o600 });
    await writeFile(path.join(work, "same-b"), `${TOKEN}\n`, { mode: 0o600 });
    await writeFile(path.join(work, "same.yaml"), manifestText({ [D1]: ["1.0"] }));
    const { io, err } = captureIO({ cwd: work });
    const argv = [
      "audit",
      "serve",
      "--manifest",
      "same.yaml",
      "--listen",
      "127.0.0.1:0",
      "--token-file",
      "same-a",
    ];
    expect(await runCli([...argv, "--reader-token-file", "same-b", "--db", "same.db"], io)).toBe(2);
    expect(err()).toMatch(/--reader-token-file holds the same token as --token-file/);
    expect(err()).not.toContain(TOKEN);
  });

  it.each<{ what: string; viewer?: string; acknowledgers?: string; message: RegExp }>([
    {
      what: "a viewer token that is the senders' token",
      viewer: `${TOKEN}\n`,
      message: /--viewer-token-file holds the same token as --token-file/,
    },
    {
      what: "an acknowledger token that is the senders' token",
      acknowledgers: `alice ${TOKEN}\n`,
      message: /the token of alice is the notification or viewer token/,
    },
    {
      what: "an acknowledgers line without a token",
      acknowledgers: "alice\n",
      message: /line 1: expected NAME TOKEN/,
    },
    {
      what: "a short acknowledger token",
      acknowledgers: "# ok\nbob short\n",
      message: /line 2: the token must be at least 16 characters/,
    },
    {
      what: "a name given twice",
      acknowledgers: "bob 0123456789abcdef-one\nbob 0123456789abcdef-two\n",
      message: /line 2: each name and each token may appear once/,
    },
  ])("refuses $what (status page tokens) with exit 2", async ({ viewer, acknowledgers, message }) => {
    await writeFile(path.join(work, "status-token"), TOKEN, { mode: 0o600 });
    await writeFile(path.join(work, "status.yaml"), manifestText({ [D1]: ["1.0"] }));
    const argv = ["audit", "serve", "--manifest", "status.yaml", "--listen", "127.0.0.1:0"];
    argv.push("--token-file", "status-token", "--db", "status.db");
    if (viewer !== undefined) {
      await writeFile(path.join(work, "viewer-token"), viewer, { mode: 0o600 });
      argv.push("--viewer-token-file", "viewer-token");
    }
    if (acknowledgers !== undefined) {
      await writeFile(path.join(work, "acknowledgers"), acknowledgers, { mode: 0o600 });
      argv.push("--acknowledger-tokens-file", "acknowledgers");
    }
    const { io, err } = captureIO({ cwd: work });
    expect(await runCli(argv, io)).toBe(2);
    expect(err()).toMatch(message);
    expect(err()).not.toContain(TOKEN);
  });

  it.each([
    { what: "--require-approvers", extra: ["--require-approvers", "2"], message: /give --public-key FILE/ },
    {
      what: "--sign-identity",
      extra: ["--sign-identity", "reg.example/x"],
      message: /give --public-key FILE/,
    },
    {
      what: "--require-independent-approver",
      extra: ["--require-independent-approver"],
      message: /give --public-key FILE/,
    },
    { what: "a missing key file", extra: ["--public-key", "absent.pub"], message: /absent\.pub/ },
  ])("refuses $what without usable trust settings, with exit 2", async ({ extra, message }) => {
    await writeFile(path.join(work, "trust-token"), TOKEN, { mode: 0o600 });
    await writeFile(path.join(work, "viewer-token"), `viewer-${TOKEN}`, { mode: 0o600 });
    await writeFile(path.join(work, "trust.yaml"), manifestText({ [D1]: ["1.0"] }));
    const argv = ["audit", "serve", "--manifest", "trust.yaml", "--listen", "127.0.0.1:0"];
    argv.push("--token-file", "trust-token", "--viewer-token-file", "viewer-token", "--db", "trust.db");
    const { io, err } = captureIO({ cwd: work });
    expect(await runCli([...argv, ...extra], io)).toBe(2);
    expect(err()).toMatch(message);
  });

  it("documents the status page's trust settings in audit serve --help", async () => {
    const { io, out } = captureIO();
    expect(await runCli(["audit", "serve", "--help"], io)).toBe(0);
    for (const option of ["--public-key", "--policy", "--sign-identity", "--require-approvers"]) {
      expect(out()).toContain(option);
    }
    expect(out()).toMatch(/signatures are\s+not\s+verified/);
  });

  it("lists the audit commands in the help", async () => {
    const { io, out } = captureIO();
    expect(await runCli(["--help"], io)).toBe(0);
    expect(out()).toMatch(/audit serve/);
    expect(out()).toMatch(/audit reconcile/);
    expect(out()).toMatch(/audit findings/);
  });
});

describe("audit serve reloads its manifests without a restart", () => {
  let hook: Server;
  const alerts: string[] = [];

  beforeAll(async () => {
    hook = createServer((request, response) => {
      let text = "";
      request.on("data", (chunk: Buffer) => (text += chunk.toString()));
      request.on("end", () => {
        alerts.push((JSON.parse(text) as { text: string }).text);
        response.end();
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
  });

  afterAll(async () => {
    await new Promise((resolve) => hook.close(resolve));
  });

  it("judges by the new manifests after a change, keeps them after a broken change, and alerts", async () => {
    const manifest = path.join(work, "reload.yaml");
    await writeFile(manifest, manifestText({ [D1]: ["1.0"] }));
    const tokenFile = path.join(work, "reload-token");
    await writeFile(tokenFile, TOKEN, { mode: 0o600 });
    const readerTokenFile = path.join(work, "reload-reader-token");
    await writeFile(readerTokenFile, READER_TOKEN, { mode: 0o600 });
    const port = await findFreePort();
    const url = `http://127.0.0.1:${port}`;
    const controller = new AbortController();
    const { io, out, err } = captureIO({ cwd: work, signal: controller.signal });
    const done = runCli(
      allowingLoopbackRegistries([
        "audit",
        "serve",
        "--manifest",
        manifest,
        "--listen",
        `127.0.0.1:${port}`,
        "--token-file",
        tokenFile,
        "--reader-token-file",
        readerTokenFile,
        "--db",
        path.join(work, "reload.db"),
        "--alert-webhook",
        `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`,
        "--reload-interval",
        "1",
        // Names under .example are not public DNS: the registry policy refuses them unless allowed.
        "--allow-registry",
        "stage.example",
        "--allow-registry",
        "prod.example",
      ]),
      io,
    );
    const until = async <T>(probe: () => Promise<T | undefined>): Promise<T> => {
      for (let i = 0; i < 200; i++) {
        const value = await probe().catch(() => undefined);
        if (value !== undefined) return value;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error(`timed out; server output:\n${out()}\n${err()}`);
    };
    const send = async (id: string, digest: string, tag: string): Promise<void> => {
      const response = await fetch(`${url}/events/prod.example`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({
          events: [
            {
              id,
              action: "push",
              target: {
                mediaType: "application/vnd.oci.image.manifest.v1+json",
                digest,
                tag,
                repository: "images/app",
              },
              request: { host: "prod.example" },
            },
          ],
        }),
      });
      expect(response.status).toBe(200);
    };
    const verdictOf = (tag: string) =>
      until(async () => {
        const response = await fetch(`${url}/findings?tag=${tag}`, {
          headers: { authorization: `Bearer ${READER_TOKEN}` },
        });
        const body = (await response.json()) as { findings: { verdict: string }[] };
        return body.findings[0]?.verdict;
      });

    await until(async () => ((await fetch(`${url}/healthz`)).ok ? true : undefined));
    await send("before", D2, "2.0");
    expect(await verdictOf("2.0")).toBe("violation");

    await writeFile(manifest, manifestText({ [D1]: ["1.0"], [D2]: ["2.0", "2.1"] }));
    const later = new Date(Date.now() + 2000);
    await utimes(manifest, later, later);
    await until(async () => {
      const metrics = await (await fetch(`${url}/metrics`)).text();
      return /^promoter_audit_manifest_reloads_total 2$/m.test(metrics) ? true : undefined;
    });
    await send("after", D2, "2.1");
    expect(await verdictOf("2.1")).toBe("verified");

    await writeFile(manifest, "registries: [broken\n");
    const evenLater = new Date(Date.now() + 4000);
    await utimes(manifest, evenLater, evenLater);
    await until(() =>
      Promise.resolve(
        alerts.some((text) => text.includes("keeping the last good manifests")) ? true : undefined,
      ),
    );
    await send("still", D2, "2.0");
    expect(await verdictOf("2.0")).toBe("verified");
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^promoter_audit_manifest_reload_failures_total 1$/m);

    controller.abort();
    expect(await done).toBe(0);
    expect(out()).toContain('"message":"audit server stopped"');
  });
});
