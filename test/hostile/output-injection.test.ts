import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registryAuthVariable } from "../../src/registry/index.js";
import { FaultProxy, type FaultRule } from "../support/fault-proxy.js";
import {
  HOSTILE_NAME,
  HOSTILE_TEXT,
  hostileErrorRules,
  jsonProblems,
  markdownProblems,
  textSinkProblems,
} from "../support/hostile-output.js";
import { findFreePort, startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { seedRegistry } from "../support/registry-judge.js";
import { PROMOTER_BIN, requireBuiltCli, runPromoter, type PromoterRun } from "../support/promoter-process.js";
import { makeImage } from "../support/test-images.js";

/**
 * Output injection (issue "Untrusted pull requests", finding 3) and secrets in output ("Trust
 * under attack", finding 1), end to end through `promoter` as CI runs it (a child process of
 * bin/promoter.js): pull-request authors name files and write manifest scalars, a hostile
 * registry writes its error bodies and notifications. Whatever they write must reach the CI log,
 * the terminal, the pull-request comment, the report files and the alert webhook as inert text,
 * and nothing the run knows as a secret may reach any of them.
 */

// Secrets with a recognisable shape, so that any trace of them in any output is found.
const PROD_USER = "pusher";
const PROD_PASSWORD = "Prod-pw-5e2b8c1d9a7f4e60";
const SIGN_KEY_PASSWORD = "Sign-pw-3a8d6f0e2c9b4d71";
const AUDIT_TOKEN = "Audit-token-8f1e4c2a7d9b3e65";
const AUDIT_READER_TOKEN = "Audit-reader-3b7d0e9c5a1f2468";

let work: string;
let staging: TestRegistry;
let prod: TestRegistry; // htpasswd basic auth; credentials in PROMOTER_AUTH_<proxy host>
let prodProxy: FaultProxy;

const released = makeImage({ layers: 1, layerSize: 1024, mediaTypes: "oci", seed: "output-released" });
const candidate = makeImage({ layers: 1, layerSize: 1024, mediaTypes: "oci", seed: "output-candidate" });

type Run = PromoterRun;

/** Everything the runs printed and wrote, searched for secrets at the end. */
const transcript: string[] = [];

function basic(user: string, password: string): string {
  return Buffer.from(`${user}:${password}`).toString("base64");
}

/** Every form a secret could leak in. */
function secretForms(): string[] {
  return [
    PROD_PASSWORD,
    basic(PROD_USER, PROD_PASSWORD),
    Buffer.from(PROD_PASSWORD).toString("base64"),
    SIGN_KEY_PASSWORD,
    AUDIT_TOKEN,
    AUDIT_READER_TOKEN,
  ];
}

/** Each secret form found in `text`, with where: empty when nothing leaked. */
function leaks(text: string): string[] {
  return secretForms().flatMap((secret) => {
    const at = text.indexOf(secret);
    return at < 0 ? [] : [`${secret} in ${JSON.stringify(text.slice(Math.max(0, at - 60), at + 60))}`];
  });
}

function baseEnv(): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: work,
    [registryAuthVariable(prodProxy.host)]: `${PROD_USER}:${PROD_PASSWORD}`,
  };
}

async function promoter(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<Run> {
  const run = await runPromoter(args, {
    cwd: options.cwd ?? work,
    env: { ...baseEnv(), ...options.env },
    exactEnv: true,
  });
  transcript.push(run.stdout, run.stderr);
  if (process.env.HOSTILE_TRACE)
    process.stdout.write(`----- ${args.join(" ")}: exit ${run.status}\n${run.stdout}\n${run.stderr}\n`);
  return run;
}

async function written(file: string): Promise<string> {
  const text = await readFile(path.join(work, file), "utf8");
  transcript.push(text);
  return text;
}

/** The run ended with `status`, and a person would see no stack trace or internal error. */
function expectStatus(run: Run, status: number): void {
  expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(status);
  expect(run.stderr).not.toMatch(/internal error|This is a bug|^\s+at .*:\d+:\d+\)?$/m);
}

/** The hostile text did reach the output (escaped): the test exercised the path it names. */
function expectReached(text: string): void {
  expect(text).toMatch(/newline-command|carriage-return-command/);
}

function expectInert(problems: string[], what: string): void {
  expect(problems, what).toEqual([]);
}

function withHostileRegistry<T>(rules: FaultRule[], body: () => Promise<T>): Promise<T> {
  prodProxy.setRules(rules);
  return body().finally(() => {
    prodProxy.setRules([]);
  });
}

/** POST upload sessions and manifest PUTs refused with `message` in the error body. */
function hostileWriteRules(message: string): FaultRule[] {
  const body = JSON.stringify({ errors: [{ code: "DENIED", message }] });
  return [
    {
      name: "hostile write",
      method: ["POST", "PUT"],
      path: /\/(?:blobs\/uploads\/|manifests\/)/,
      fault: {
        kind: "respond",
        respond: (_request, response) => {
          response.writeHead(403, {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
          });
          response.end(body);
        },
      },
    },
  ];
}

function plainManifest(images: { content: typeof released; tags: string[] }[]): string {
  return [
    "registries:",
    `- name: ${staging.host}/staging`,
    "  src: true",
    `- name: ${prodProxy.host}/prod`,
    "images:",
    "- name: app",
    "  dmap:",
    ...images.map(
      ({ content, tags }) => `    "${content.digest}": [${tags.map((tag) => `"${tag}"`).join(", ")}]`,
    ),
    "",
  ].join("\n");
}

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "hostile-output-"));
  [staging, prod] = await Promise.all([
    startRegistry(),
    startRegistry({ auth: "basic", users: [{ username: PROD_USER, password: PROD_PASSWORD }] }),
  ]);
  prodProxy = await FaultProxy.start({ upstream: prod.url });
  await seedRegistry(staging.url, "staging/app", [
    { content: released, tags: ["v1"] },
    { content: candidate, tags: ["v2"] },
  ]);
  await seedRegistry(
    prod.url,
    "prod/app",
    [{ content: released, tags: ["v1"] }],
    `Basic ${basic(PROD_USER, PROD_PASSWORD)}`,
  );
  await writeFile(
    path.join(work, "app.yaml"),
    plainManifest([
      { content: released, tags: ["v1"] },
      { content: candidate, tags: ["v2"] },
    ]),
  );
}, 120_000);

afterAll(async () => {
  await (prodProxy as FaultProxy | undefined)?.stop();
  const registries: (TestRegistry | undefined)[] = [staging, prod];
  await Promise.all(registries.flatMap((registry) => (registry ? [registry.stop()] : [])));
  if (work) await rm(work, { recursive: true, force: true });
});

/** A thin-manifest project named `project` whose images file lists `digest`, a bad one. */
async function writeProject(root: string, project: string, digest: string): Promise<void> {
  await mkdir(path.join(root, "manifests", project), { recursive: true });
  await mkdir(path.join(root, "images", project), { recursive: true });
  await writeFile(
    path.join(root, "manifests", project, "promoter-manifest.yaml"),
    `registries:\n- name: ${staging.host}/staging\n  src: true\n- name: ${prodProxy.host}/prod\n`,
  );
  await writeFile(
    path.join(root, "images", project, "images.yaml"),
    `- name: app\n  dmap:\n    ${JSON.stringify(digest)}: ["v1"]\n`,
  );
}

describe("outside text reaches every sink inert", () => {
  it("validate: a project folder and a manifest scalar carrying runner commands, escapes and markup", async () => {
    const root = path.join(work, "thin-validate");
    await writeProject(root, HOSTILE_NAME, `sha256:${HOSTILE_TEXT}`);
    const text = await promoter(["validate", "--thin-manifest-dir", root]);
    expectStatus(text, 1);
    expectReached(text.stdout);
    expectInert(textSinkProblems(text.stdout + text.stderr), "validate text");

    const json = await promoter(["validate", "--thin-manifest-dir", root, "--output", "json"]);
    expectStatus(json, 1);
    expectInert(jsonProblems(json.stdout), "validate json");
    // JSON stays lossless: the file name comes back exactly.
    const document = JSON.parse(json.stdout) as { findings: { file: string }[] };
    expect(document.findings.map((finding) => finding.file)).toContain(
      path.relative(work, path.join(root, "images", HOSTILE_NAME, "images.yaml")),
    );
  });

  it("check: a pull request naming files with backticks, HTML and runner commands, judged against a hostile registry", async () => {
    const repo = path.join(work, "pr");
    await mkdir(path.join(repo, "manifests", "web"), { recursive: true });
    await mkdir(path.join(repo, "images", "web"), { recursive: true });
    await writeFile(
      path.join(repo, "manifests", "web", "promoter-manifest.yaml"),
      `registries:\n- name: ${staging.host}/staging\n  src: true\n- name: ${prodProxy.host}/prod\n`,
    );
    const images = (lines: string[]) =>
      writeFile(path.join(repo, "images", "web", "images.yaml"), lines.join("\n"));
    await images(["- name: app", "  dmap:", `    "${released.digest}": ["v1"]`, ""]);
    const git = (...args: string[]) =>
      execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", ...args], {
        cwd: repo,
        env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", HOME: work },
      });
    git("init", "-q");
    git("add", "-A");
    git("commit", "-q", "-m", "base");
    // The pull request: a new tag (judged against production) and a project with a hostile name.
    await images([
      "- name: app",
      "  dmap:",
      `    "${released.digest}": ["v1"]`,
      `    "${candidate.digest}": ["v2"]`,
      "",
    ]);
    await writeProject(repo, HOSTILE_NAME, `sha256:${HOSTILE_TEXT}`);

    await withHostileRegistry(hostileErrorRules(HOSTILE_TEXT), async () => {
      const summary = path.join(work, "step-summary.md");
      const markdown = await promoter(
        ["check", "--base", "HEAD", "--thin-manifest-dir", ".", "--output", "markdown"],
        {
          cwd: repo,
          env: { GITHUB_STEP_SUMMARY: summary },
        },
      );
      expectStatus(markdown, 1);
      expectReached(markdown.stdout);
      expect(markdown.stdout).toMatch(/DENIED|denied|403/);
      expectInert(markdownProblems(markdown.stdout), "check markdown");
      expectInert(textSinkProblems(markdown.stderr), "check markdown stderr");
      expectInert(markdownProblems(await written("step-summary.md")), "check step summary");

      const text = await promoter(["check", "--base", "HEAD", "--thin-manifest-dir", "."], { cwd: repo });
      expectStatus(text, 1);
      expectReached(text.stdout);
      expectInert(textSinkProblems(text.stdout + text.stderr), "check text");

      const json = await promoter(
        ["check", "--base", "HEAD", "--thin-manifest-dir", ".", "--output", "json"],
        {
          cwd: repo,
        },
      );
      expectStatus(json, 1);
      expectInert(jsonProblems(json.stdout), "check json");
    });
  });

  it("promote (dry run): a registry whose read errors carry runner commands, escapes and markup", async () => {
    await withHostileRegistry(hostileErrorRules(HOSTILE_TEXT), async () => {
      const text = await promoter(["promote", "--manifest", "app.yaml"]);
      expectStatus(text, 1);
      expectReached(text.stdout);
      expectInert(textSinkProblems(text.stdout + text.stderr), "promote text");

      const markdown = await promoter(["promote", "--manifest", "app.yaml", "--output", "markdown"]);
      expectStatus(markdown, 1);
      expectReached(markdown.stdout);
      expectInert(markdownProblems(markdown.stdout), "promote markdown");

      const json = await promoter([
        "promote",
        "--manifest",
        "app.yaml",
        "--output",
        "json",
        "--log-format",
        "json",
        "--report",
        "dry-report.json",
        "--plan-file",
        "dry-plan.json",
      ]);
      expectStatus(json, 1);
      expectInert(jsonProblems(json.stdout), "promote json");
      expectInert(jsonProblems(json.stderr), "promote json logs");
      expectInert(jsonProblems(await written("dry-report.json")), "promote report file");
      expectInert(jsonProblems(await written("dry-plan.json")), "promote plan file");
    });
  });

  it("promote --confirm: a registry whose write errors carry them, in results, reports and logs", async () => {
    await withHostileRegistry(hostileWriteRules(HOSTILE_TEXT), async () => {
      const text = await promoter(["promote", "--manifest", "app.yaml", "--confirm"]);
      expectStatus(text, 1);
      expectReached(text.stdout + text.stderr);
      expectInert(textSinkProblems(text.stdout + text.stderr), "promote --confirm text");

      const markdown = await promoter([
        "promote",
        "--manifest",
        "app.yaml",
        "--confirm",
        "--output",
        "markdown",
        "--log-format",
        "json",
      ]);
      expectStatus(markdown, 1);
      expectReached(markdown.stdout);
      expectInert(markdownProblems(markdown.stdout), "promote --confirm markdown");
      expectReached(markdown.stderr);
      expectInert(jsonProblems(markdown.stderr), "promote --confirm json logs");

      const json = await promoter([
        "promote",
        "--manifest",
        "app.yaml",
        "--confirm",
        "--output",
        "json",
        "--report",
        "confirm-report.json",
      ]);
      expectStatus(json, 1);
      expectInert(jsonProblems(json.stdout), "promote --confirm json");
      expectInert(jsonProblems(await written("confirm-report.json")), "promote --confirm report");
    });
  });

  it("verify: unreadable signatures whose reasons carry them, as text and JSON", async () => {
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    await writeFile(path.join(work, "verify.pub"), publicKey.export({ type: "spki", format: "pem" }));
    await withHostileRegistry(hostileErrorRules(HOSTILE_TEXT), async () => {
      const text = await promoter(["verify", "--manifest", "app.yaml", "--public-key", "verify.pub"]);
      expectStatus(text, 1);
      expectReached(text.stdout);
      expectInert(textSinkProblems(text.stdout + text.stderr), "verify text");
      const json = await promoter([
        "verify",
        "--manifest",
        "app.yaml",
        "--public-key",
        "verify.pub",
        "--output",
        "json",
      ]);
      expectStatus(json, 1);
      expectInert(jsonProblems(json.stdout), "verify json");
    });
  });

  it("audit reconcile and snapshot: listing errors that carry them", async () => {
    await withHostileRegistry(hostileErrorRules(HOSTILE_TEXT), async () => {
      for (const output of ["text", "markdown", "json"] as const) {
        const run = await promoter([
          "audit",
          "reconcile",
          "--manifest",
          "app.yaml",
          "--no-catalog",
          "--output",
          output,
        ]);
        expectStatus(run, 1);
        expectReached(run.stdout);
        const judge =
          output === "markdown" ? markdownProblems : output === "json" ? jsonProblems : textSinkProblems;
        expectInert(judge(run.stdout), `audit reconcile ${output}`);
        expectInert(textSinkProblems(run.stderr), `audit reconcile ${output} stderr`);
      }
      const snapshot = await promoter(["snapshot", `${prodProxy.host}/prod`, "--repository", "app"]);
      expectStatus(snapshot, 2);
      expectReached(snapshot.stderr);
      expectInert(textSinkProblems(snapshot.stdout + snapshot.stderr), "snapshot");
    });
  });
});

describe("known secrets reach no sink", () => {
  it("validate and check: a manifest scalar and a folder named like a password from the environment", async () => {
    const from = transcript.length;
    const root = path.join(work, "thin-secret");
    await writeProject(root, `team-${PROD_PASSWORD}`, PROD_PASSWORD);
    for (const output of ["text", "json"]) {
      const run = await promoter(["validate", "--thin-manifest-dir", root, "--output", output]);
      expectStatus(run, 1);
      expect(run.stdout).toMatch(/invalid-digest/);
    }

    const repo = path.join(work, "pr-secret");
    await mkdir(repo, { recursive: true });
    execFileSync("git", ["init", "-q"], { cwd: repo });
    execFileSync(
      "git",
      ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "base"],
      {
        cwd: repo,
        env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", HOME: work },
      },
    );
    await writeProject(repo, "team", PROD_PASSWORD);
    for (const output of ["text", "markdown", "json"]) {
      const run = await promoter(
        ["check", "--base", "HEAD", "--thin-manifest-dir", ".", "--output", output],
        {
          cwd: repo,
          env: { GITHUB_STEP_SUMMARY: path.join(work, "secret-summary.md") },
        },
      );
      expectStatus(run, 1);
      expect(run.stdout).toMatch(/invalid|digest/);
    }
    await written("secret-summary.md");
    expect(leaks(transcript.slice(from).join("\n"))).toEqual([]);
  });

  it("promote --confirm: a registry that echoes the Authorization header and the password into an upload Location", async () => {
    const from = transcript.length;
    const echo: FaultRule = {
      name: "echo into Location",
      method: "POST",
      path: /\/blobs\/uploads\/$/,
      fault: {
        kind: "respond",
        respond: (request, response) => {
          const authorization = request.headers.authorization ?? "";
          response.writeHead(202, {
            location: `http://127.0.0.1:1/${authorization.replace(/^Basic /, "")}/${PROD_PASSWORD}/upload`,
            "content-length": 0,
          });
          response.end();
        },
      },
    };
    await withHostileRegistry([echo], async () => {
      for (const [output, logFormat] of [
        ["text", "text"],
        ["json", "json"],
        ["markdown", "json"],
      ] as const) {
        const run = await promoter([
          "promote",
          "--manifest",
          "app.yaml",
          "--confirm",
          "--output",
          output,
          "--log-format",
          logFormat,
          "--report",
          `echo-${output}.json`,
        ]);
        expectStatus(run, 1);
        expect(run.stdout + run.stderr).toMatch(/another origin/);
        await written(`echo-${output}.json`);
      }
    });
    expect(leaks(transcript.slice(from).join("\n"))).toEqual([]);
  });

  it("promote: the signing key's password, repeated in a manifest, is not printed", async () => {
    const from = transcript.length;
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const pem = privateKey.export({
      type: "pkcs8",
      format: "pem",
      cipher: "aes-256-cbc",
      passphrase: SIGN_KEY_PASSWORD,
    });
    await writeFile(
      path.join(work, "sign-secret.yaml"),
      plainManifest([{ content: released, tags: ["v1"] }]).replace(
        `"${released.digest}": ["v1"]`,
        `"${released.digest}": ["v1"]\n    "${SIGN_KEY_PASSWORD}": ["v9"]`,
      ),
    );
    const run = await promoter(
      ["promote", "--manifest", "sign-secret.yaml", "--sign-key", "env://PROMOTER_SIGN_KEY"],
      {
        env: { PROMOTER_SIGN_KEY: String(pem), PROMOTER_SIGN_KEY_PASSWORD: SIGN_KEY_PASSWORD },
      },
    );
    expectStatus(run, 1);
    expect(run.stderr).toMatch(/invalid-digest/);
    expect(leaks(transcript.slice(from).join("\n"))).toEqual([]);
  });

  it("audit serve: a notification that echoes the bearer token and hostile text into its id reaches logs and the webhook inert", async () => {
    const from = transcript.length;
    const alerts: string[] = [];
    const hook: Server = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk: Buffer) => (body += chunk.toString()));
      request.on("end", () => {
        alerts.push(body);
        response.end("ok");
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
    const port = await findFreePort();
    await writeFile(path.join(work, "audit-token"), `${AUDIT_TOKEN}\n`, { mode: 0o600 });
    await writeFile(path.join(work, "audit-reader-token"), `${AUDIT_READER_TOKEN}\n`, { mode: 0o600 });
    const child: ChildProcess = spawn(
      process.execPath,
      [
        PROMOTER_BIN,
        "audit",
        "serve",
        "--manifest",
        "app.yaml",
        "--listen",
        `127.0.0.1:${port}`,
        "--token-file",
        "audit-token",
        "--reader-token-file",
        "audit-reader-token",
        "--db",
        "audit.db",
        "--alert-webhook",
        `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`,
        "--log-level",
        "debug",
      ],
      { cwd: work, env: baseEnv(), stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const until = async (what: string, done: () => boolean | Promise<boolean>): Promise<void> => {
      const deadline = Date.now() + 20_000;
      while (!(await done())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${stdout}\n${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    try {
      await until("the audit server", async () => {
        const response = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
        return response?.status === 200;
      });
      // A compromised registry holds the token (it sends it) and writes the event ids.
      const id = `${HOSTILE_TEXT.slice(0, 120)} Bearer ${AUDIT_TOKEN}`;
      const response = await fetch(`http://127.0.0.1:${port}/events`, {
        method: "POST",
        headers: { authorization: `Bearer ${AUDIT_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({
          events: [
            {
              id,
              action: "delete",
              target: { repository: "prod/app", digest: released.digest },
              request: { host: prodProxy.host },
            },
          ],
        }),
      });
      expect(response.status).toBe(200);
      await until("the alert", () => alerts.length > 0);
      // A reader sees what the registry echoed, without either token.
      const findings = await (
        await fetch(`http://127.0.0.1:${port}/findings`, {
          headers: { authorization: `Bearer ${AUDIT_READER_TOKEN}` },
        })
      ).text();
      transcript.push(findings);
      expect(findings).toMatch(/newline-command/);
      expectInert(jsonProblems(findings), "GET /findings");
    } finally {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
      await new Promise((resolve) => hook.close(resolve));
    }
    transcript.push(stdout, stderr, ...alerts);
    expectInert(jsonProblems(stdout), "audit serve logs");
    for (const alert of alerts) {
      const text = (JSON.parse(alert) as { text: string }).text;
      expect(text).toMatch(/newline-command/);
      // Slack mrkdwn: <...> are links and mentions; raw control characters break the message.
      expect(text).not.toMatch(/[<>]/);
      expectInert(textSinkProblems(text), "alert text");
    }
    expect(leaks(transcript.slice(from).join("\n"))).toEqual([]);
  });

  it("appear nowhere in anything the runs printed or wrote", () => {
    const everything = transcript.join("\n");
    expect(everything.length).toBeGreaterThan(1000);
    expect(leaks(everything)).toEqual([]);
  });
});
