import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registryAuthVariable } from "../../src/registry/index.js";
import { FaultProxy } from "../support/fault-proxy.js";
import { allowingLoopbackRegistries } from "../support/local-registries.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { seedRegistry } from "../support/registry-judge.js";
import { skopeoInspectRaw, skopeoListTags } from "../support/skopeo.js";
import {
  allBlobs,
  makeImage,
  makeIndex,
  writeOciLayoutDirectly,
  type TestContent,
} from "../support/test-images.js";

/**
 * Hostile registries and hostile input (issue 8, section 2), end to end through `promoter` as a
 * user runs it (a child process of bin/promoter.js): what matters is what the user sees, the exit
 * status, one clear line, no stack trace and no secret, and where credentials went.
 */

const repoRoot = path.resolve(import.meta.dirname, "../..");
const cli = path.join(repoRoot, "bin", "promoter.js");

// Secrets with a recognisable shape, so that any trace of them in any output is found.
const STAGING_USER = "stager";
const STAGING_PASSWORD = "Stg-pw-7f3a91c2e5d44b0b";
const MIRROR_USER = "robot";
const MIRROR_PASSWORD = "Mir-pw-1c9e0d2b7a6f4e33";

let work: string;
let dockerConfig: string;
let staging: TestRegistry; // htpasswd basic auth; credentials in DOCKER_CONFIG
let mirror: TestRegistry; // token auth; credentials in PROMOTER_AUTH_<HOST>
let stagingProxy: FaultProxy;
let mirrorProxy: FaultProxy;
let storage: Server;
let storagePort: number;
/** Every request the "blob storage" origin received. */
const storageRequests: { url: string; headers: IncomingHttpHeaders }[] = [];
const storageBlobs = new Map<string, Buffer>();

const images = [0, 1, 2].map((i) =>
  makeImage({ layers: 2, layerSize: 4096, mediaTypes: "oci", seed: `hostile-${i}` }),
);
const multi = makeIndex(
  [
    makeImage({ layers: 1, layerSize: 2048, mediaTypes: "oci", seed: "hostile-amd64" }),
    makeImage({
      layers: 1,
      layerSize: 2048,
      mediaTypes: "oci",
      seed: "hostile-arm64",
      platform: { architecture: "arm64", os: "linux" },
    }),
  ],
  { mediaType: "oci" },
);

function basic(user: string, password: string): string {
  return Buffer.from(`${user}:${password}`).toString("base64");
}

/** Every form a secret could leak in. */
function secretForms(): string[] {
  return [
    STAGING_PASSWORD,
    MIRROR_PASSWORD,
    basic(STAGING_USER, STAGING_PASSWORD),
    basic(MIRROR_USER, MIRROR_PASSWORD),
    Buffer.from(STAGING_PASSWORD).toString("base64"),
    Buffer.from(MIRROR_PASSWORD).toString("base64"),
  ];
}

/** A JSON Web Token (the bearer tokens the token server signs). */
const JWT = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+/;
/** A line of a JavaScript stack trace (not the plan's "at images.yaml:3:5"). */
const STACK_LINE = /^\s+at .*(?:\.[cm]?[jt]s|node:[\w/]+):\d+:\d+\)?$/m;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Everything any run printed, and every file it wrote, to be searched for secrets. */
const transcript: string[] = [];

function promoter(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<Run> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...allowingLoopbackRegistries(args)], {
      cwd: work,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: work,
        DOCKER_CONFIG: dockerConfig,
        [registryAuthVariable(mirrorProxy.host)]: `${MIRROR_USER}:${MIRROR_PASSWORD}`,
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`promoter ${args.join(" ")} did not finish in ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.on("exit", (status) => {
      clearTimeout(timer);
      transcript.push(stdout, stderr);
      resolve({ status, stdout, stderr, ms: performance.now() - started });
    });
  });
}

/** The run stopped with `status` and a clear message, no stack trace, no internal error. */
function expectClear(run: Run, status: number, message: RegExp): void {
  const all = `${run.stdout}\n${run.stderr}`;
  if (process.env.HOSTILE_TRACE) process.stdout.write(`----- exit ${run.status}\n${all}\n`);
  expect(run.status, all).toBe(status);
  expect(all).toMatch(message);
  expect(all).not.toMatch(STACK_LINE);
  expect(all).not.toMatch(/internal error|This is a bug/);
  expect(all).not.toMatch(/\[object Object\]|undefined:/);
}

function manifestYaml(
  source: string,
  destination: string,
  entries: { name: string; content: TestContent; tags: string[] }[],
): string {
  return [
    "registries:",
    `- name: ${source}`,
    "  src: true",
    `- name: ${destination}`,
    "images:",
    ...entries.flatMap((entry) => [
      `- name: ${entry.name}`,
      "  dmap:",
      `    "${entry.content.digest}": [${entry.tags.map((tag) => `"${tag}"`).join(", ")}]`,
    ]),
    "",
  ].join("\n");
}

async function writeManifest(
  file: string,
  entries: { name: string; content: TestContent; tags: string[] }[],
  destination = `${mirrorProxy.host}/prod`,
): Promise<string> {
  await writeFile(path.join(work, file), manifestYaml(`${stagingProxy.host}/staging`, destination, entries));
  return file;
}

beforeAll(async () => {
  if (!existsSync(path.join(repoRoot, "dist", "cli", "entry.js"))) {
    throw new Error("dist/ is missing: run `npm run build` before the end-to-end hostile tests");
  }
  work = await mkdtemp(path.join(tmpdir(), "hostile-e2e-"));
  [staging, mirror] = await Promise.all([
    startRegistry({ auth: "basic", users: [{ username: STAGING_USER, password: STAGING_PASSWORD }] }),
    startRegistry({
      auth: "token",
      anonymous: "none",
      users: [{ username: MIRROR_USER, password: MIRROR_PASSWORD, access: "all" }],
    }),
  ]);
  stagingProxy = await FaultProxy.start({ upstream: staging.url });
  mirrorProxy = await FaultProxy.start({ upstream: mirror.url });

  // "Blob storage" on another origin, as S3 or GCS behind a registry's redirect.
  storage = createServer((request, response) => {
    storageRequests.push({ url: request.url ?? "", headers: request.headers });
    const digest = /\/blobs\/(sha256:[0-9a-f]{64})/.exec(request.url ?? "")?.[1];
    const bytes = digest === undefined ? undefined : storageBlobs.get(digest);
    if (!bytes) {
      response.writeHead(404, { "content-length": 0 });
      response.end();
      return;
    }
    response.writeHead(200, { "content-length": bytes.length, "content-type": "application/octet-stream" });
    response.end(request.method === "HEAD" ? undefined : bytes);
  });
  await new Promise<void>((resolve) => storage.listen(0, "127.0.0.1", resolve));
  storagePort = (storage.address() as AddressInfo).port;

  dockerConfig = path.join(work, "docker");
  await mkdir(dockerConfig);
  await writeFile(
    path.join(dockerConfig, "config.json"),
    JSON.stringify({ auths: { [stagingProxy.host]: { auth: basic(STAGING_USER, STAGING_PASSWORD) } } }),
  );
  const authorization = `Basic ${basic(STAGING_USER, STAGING_PASSWORD)}`;
  for (const [i, image] of images.entries()) {
    await seedRegistry(staging.url, `staging/app${i}`, [{ content: image, tags: [`v${i}`] }], authorization);
    for (const blob of allBlobs(image)) storageBlobs.set(blob.descriptor.digest, blob.bytes);
  }
  await seedRegistry(staging.url, "staging/multi", [{ content: multi, tags: ["v1"] }], authorization);
  for (const blob of allBlobs(multi)) storageBlobs.set(blob.descriptor.digest, blob.bytes);
}, 120_000);

afterAll(async () => {
  for (const proxy of [stagingProxy, mirrorProxy] as (FaultProxy | undefined)[]) await proxy?.stop();
  const registries: (TestRegistry | undefined)[] = [staging, mirror];
  await Promise.all(registries.flatMap((registry) => (registry ? [registry.stop()] : [])));
  const server = storage as Server | undefined;
  if (server) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
  }
  if (work) await rm(work, { recursive: true, force: true });
});

const mirrorCreds = { username: MIRROR_USER, password: MIRROR_PASSWORD };

describe("credentials", () => {
  it("go to the registry's own origin only: blobs redirected to another port and another host get none", async () => {
    let redirects = 0;
    stagingProxy.setRules([
      {
        name: "to storage",
        method: "GET",
        path: /\/blobs\/sha256:/,
        fault: {
          kind: "redirect",
          location: (request) => {
            redirects += 1;
            // Another port on the same address, and another host name for the same machine;
            // signed-URL style parameters that must not be printed either.
            const host = redirects % 2 === 0 ? "127.0.0.1" : "localhost";
            const digest = request.path.slice(request.path.lastIndexOf("/") + 1);
            return `http://${host}:${storagePort}/bucket/blobs/${digest}?X-Amz-Signature=sig-${redirects}&X-Amz-Credential=AKIA-SECRET`;
          },
        },
      },
    ]);
    const entries = [
      ...images.map((content, i) => ({ name: `app${i}`, content, tags: [`v${i}`] })),
      { name: "multi", content: multi, tags: ["v1"] },
    ];
    const file = await writeManifest("creds.yaml", entries);
    const run = await promoter([
      "promote",
      "--manifest",
      file,
      "--confirm",
      "--log-format",
      "json",
      "--report",
      "creds-report.json",
      "--plan-file",
      "creds-plan.json",
    ]);
    stagingProxy.setRules([]);
    expect(run.status, run.stderr).toBe(0);
    // Storage served every blob, on both host names, and saw no credential of any kind.
    expect(storageRequests.length).toBeGreaterThanOrEqual(storageBlobs.size);
    expect(new Set(storageRequests.map((request) => request.headers.host?.split(":")[0]))).toEqual(
      new Set(["127.0.0.1", "localhost"]),
    );
    for (const request of storageRequests) {
      expect(request.headers.authorization).toBeUndefined();
      expect(request.headers.cookie).toBeUndefined();
      const seen = JSON.stringify(request);
      for (const secret of secretForms()) expect(seen).not.toContain(secret);
      expect(seen).not.toMatch(JWT);
    }
    // The images arrived (skopeo judges the token-auth mirror).
    for (const [i, image] of images.entries()) {
      const raw = await skopeoInspectRaw(`docker://${mirror.host}/prod/app${i}:v${i}`, {
        creds: mirrorCreds,
      });
      expect(raw.digest).toBe(image.digest);
    }
    expect(await skopeoListTags(`docker://${mirror.host}/prod/multi`, { creds: mirrorCreds })).toEqual([
      "v1",
    ]);
    // The signed storage URL's secrets are not in the logs either.
    expect(`${run.stdout}${run.stderr}`).not.toMatch(/sig-\d|AKIA-SECRET/);
  });

  it("never appear in errors, even when a registry echoes them back", async () => {
    // A hostile registry that quotes the request's Authorization header and the password in
    // its error message, in a challenge and in a Location.
    mirrorProxy.setRules([
      {
        name: "echo",
        method: "PUT",
        path: /\/manifests\//,
        fault: {
          kind: "respond",
          respond: (request, response) => {
            const body = JSON.stringify({
              errors: [
                {
                  code: "DENIED",
                  message: `refused ${request.headers.authorization ?? ""} for ${MIRROR_USER}:${MIRROR_PASSWORD}; staging said ${STAGING_PASSWORD}`,
                  detail: { authorization: request.headers.authorization, password: MIRROR_PASSWORD },
                },
              ],
            });
            response.writeHead(403, {
              "content-type": "application/json",
              "content-length": Buffer.byteLength(body),
              location: `http://127.0.0.1:1/?token=${MIRROR_PASSWORD}`,
            });
            response.end(body);
          },
        },
      },
    ]);
    const echo = makeImage({ layers: 1, layerSize: 1024, mediaTypes: "oci", seed: "hostile-echo" });
    await seedRegistry(
      staging.url,
      "staging/echo",
      [{ content: echo, tags: ["e1"] }],
      `Basic ${basic(STAGING_USER, STAGING_PASSWORD)}`,
    );
    const file = await writeManifest("echo.yaml", [{ name: "echo", content: echo, tags: ["e1"] }]);
    for (const output of ["text", "json", "markdown"]) {
      const run = await promoter([
        "promote",
        "--manifest",
        file,
        "--confirm",
        "--output",
        output,
        "--report",
        `echo-${output}.json`,
      ]);
      expectClear(run, 1, /DENIED|403/);
    }
    mirrorProxy.setRules([]);
  });

  it("with a wrong password, say where they came from and not what they are", async () => {
    const run = await promoter(["promote", "--manifest", "creds.yaml", "--confirm"], {
      [registryAuthVariable(mirrorProxy.host)]: `${MIRROR_USER}:wrong-${MIRROR_PASSWORD}`,
    });
    expectClear(run, 1, new RegExp(`\\$${registryAuthVariable(mirrorProxy.host)}`));
  });

  it("appear nowhere in anything the runs printed or wrote", async () => {
    const written: string[] = [];
    for (const name of await readdir(work)) {
      if (name.endsWith(".json")) written.push(await readFile(path.join(work, name), "utf8"));
    }
    expect(written.length).toBeGreaterThanOrEqual(5);
    const everything = [...transcript, ...written].join("\n");
    expect(everything.length).toBeGreaterThan(1000);
    for (const secret of secretForms()) expect(everything).not.toContain(secret);
    expect(everything).not.toMatch(JWT);
  });
});

describe("token realms", () => {
  for (const [what, realm, message] of [
    [
      "a non-http scheme",
      "file:///etc/passwd",
      /refusing token realm file:\/\/\/etc\/passwd: a token realm must be an https URL .*not file:/,
    ],
    ["user info in its URL", "http://user:pass@127.0.0.1:9/token", /user info/],
    ["not a URL", "::not a url::", /not a URL/],
  ] as const) {
    it(`refuses a realm with ${what}`, async () => {
      mirrorProxy.setRules([
        {
          fault: {
            kind: "respond",
            respond: (_request, response) => {
              response.writeHead(401, {
                "www-authenticate": `Bearer realm="${realm}",service="evil"`,
                "content-length": 0,
              });
              response.end();
            },
          },
        },
      ]);
      const run = await promoter(["promote", "--manifest", "creds.yaml"]);
      mirrorProxy.setRules([]);
      expectClear(run, 1, message);
      for (const secret of secretForms()) expect(`${run.stdout}${run.stderr}`).not.toContain(secret);
    });
  }
});

/** A new image in staging/<name> (tag t1), for a case of its own. */
async function stagedImage(name: string): Promise<TestContent> {
  const content = makeImage({ layers: 2, layerSize: 4096, mediaTypes: "oci", seed: `hostile-${name}` });
  await seedRegistry(
    staging.url,
    `staging/${name}`,
    [{ content, tags: ["t1"] }],
    `Basic ${basic(STAGING_USER, STAGING_PASSWORD)}`,
  );
  return content;
}

/** Promotes staging/<name>@digest:t1 to the mirror with the proxies' current rules; then clears them. */
async function promoteOne(name: string, content: TestContent): Promise<Run> {
  const file = await writeManifest(`${name}.yaml`, [{ name, content, tags: ["t1"] }]);
  try {
    return await promoter(["promote", "--manifest", file, "--confirm", "--quiet"]);
  } finally {
    stagingProxy.setRules([]);
    mirrorProxy.setRules([]);
  }
}

async function mirrorTags(name: string): Promise<string[]> {
  return skopeoListTags(`docker://${mirror.host}/prod/${name}`, { creds: mirrorCreds });
}

describe("hostile registries: each stops that operation with a clear error", () => {
  it("a manifest bigger than the 4 MiB cap", async () => {
    const content = await stagedImage("huge-manifest");
    const huge = Buffer.alloc(5 * 1024 * 1024, 0x20);
    stagingProxy.setRules([
      {
        path: `/v2/staging/huge-manifest/manifests/${content.digest}`,
        fault: {
          kind: "respond",
          respond: (request, response) => {
            response.writeHead(200, {
              "content-type": "application/vnd.oci.image.manifest.v1+json",
              "content-length": huge.length,
              "docker-content-digest": content.digest,
            });
            response.end(request.method === "HEAD" ? undefined : huge);
          },
        },
      },
    ]);
    const run = await promoteOne("huge-manifest", content);
    expectClear(run, 1, /huge-manifest: response of 5242880 bytes is over the 4194304-byte cap/);
    expect(await mirrorTags("huge-manifest").catch(() => [])).toEqual([]);
  });

  it("an endless manifest body (no Content-Length)", async () => {
    const content = await stagedImage("endless-manifest");
    stagingProxy.setRules([
      {
        method: "GET",
        path: `/v2/staging/endless-manifest/manifests/${content.digest}`,
        fault: { kind: "respond", respond: (_request, response) => endless(response, "{") },
      },
    ]);
    const run = await promoteOne("endless-manifest", content);
    expectClear(run, 1, /endless-manifest: response body is over the 4194304-byte cap/);
    expect(run.ms).toBeLessThan(30_000);
  });

  it("an endless blob body (no Content-Length)", async () => {
    const content = await stagedImage("endless-blob");
    const layer = allBlobs(content)[0]!.descriptor.digest;
    stagingProxy.setRules([
      {
        method: "GET",
        path: `/v2/staging/endless-blob/blobs/${layer}`,
        fault: { kind: "respond", respond: (_request, response) => endless(response, "x") },
      },
    ]);
    const run = await promoteOne("endless-blob", content);
    expectClear(
      run,
      1,
      new RegExp(`blob ${layer}: the registry sent more than the \\d+ bytes the descriptor announces`),
    );
    expect(run.ms).toBeLessThan(30_000);
    expect(await mirrorTags("endless-blob").catch(() => [])).toEqual([]);
  });

  it("a blob whose bytes do not match its digest", async () => {
    const content = await stagedImage("wrong-bytes");
    const layer = allBlobs(content)[0]!.descriptor.digest;
    stagingProxy.setRules([
      { method: "GET", path: `/v2/staging/wrong-bytes/blobs/${layer}`, fault: { kind: "corrupt" } },
    ]);
    const run = await promoteOne("wrong-bytes", content);
    expectClear(run, 1, new RegExp(`${layer}.*hash to sha256:`));
    // Nothing was tagged: the image never became visible.
    expect(await mirrorTags("wrong-bytes").catch(() => [])).toEqual([]);
  });

  it("a redirect loop", async () => {
    const content = await stagedImage("loop");
    stagingProxy.setRules([
      {
        method: "GET",
        path: /\/v2\/staging\/loop\/blobs\//,
        fault: {
          kind: "redirect",
          location: (request) =>
            request.url.search === "" ? `${request.path}?hop=1` : `${stagingProxy.url}${request.path}`,
        },
      },
    ]);
    const run = await promoteOne("loop", content);
    expectClear(run, 1, /redirect loop back to/);
    expect(await mirrorTags("loop").catch(() => [])).toEqual([]);
  });

  it("an upload Location on another host", async () => {
    const content = await stagedImage("elsewhere");
    let posts = 0;
    mirrorProxy.setRules([
      {
        method: "POST",
        path: /\/blobs\/uploads\/$/,
        fault: {
          kind: "respond",
          respond: (_request, response) => {
            posts += 1;
            response.writeHead(202, {
              location: `http://localhost:${storagePort}/upload/${posts}?_state=abc`,
              "content-length": 0,
              "docker-upload-uuid": String(posts),
            });
            response.end();
          },
        },
      },
    ]);
    const before = storageRequests.length;
    const run = await promoteOne("elsewhere", content);
    expectClear(
      run,
      1,
      /refusing upload Location on another origin \(http:\/\/localhost:\d+\/upload\/\d+\?_state=REDACTED\)/,
    );
    // Nothing, and no credential, was sent to the other host.
    expect(storageRequests.length).toBe(before);
    expect(posts).toBeGreaterThan(0);
  });
});

/** Streams `filler` until the client hangs up (a body that never ends). */
function endless(response: ServerResponse, filler: string): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, filler);
  response.writeHead(200, { "content-type": "application/octet-stream" });
  return new Promise((resolve) => {
    const pump = () => {
      while (!response.destroyed && response.write(chunk));
      if (response.destroyed) resolve();
    };
    response.on("drain", pump);
    response.on("close", () => {
      resolve();
    });
    pump();
  });
}

describe("OCI layout input that tries to leave its directory is refused", () => {
  const image = makeImage({ layers: 1, layerSize: 1024, mediaTypes: "oci", seed: "hostile-layout" });
  let outside: string;
  let sentinel: string;

  /** A source tree `layouts/<name>` with image `app` (tag t1), promoted to `out/<name>`. */
  async function layoutCase(
    name: string,
    mutate: (layout: string) => Promise<void>,
    destination = `oci:out/${name}`,
  ): Promise<Run> {
    const layout = path.join(work, "layouts", name, "app");
    await writeOciLayoutDirectly(layout, [{ content: image, tag: "t1" }]);
    await mutate(layout);
    const file = `layout-${name}.yaml`;
    await writeFile(
      path.join(work, file),
      manifestYaml(`oci:layouts/${name}`, destination, [{ name: "app", content: image, tags: ["t1"] }]),
    );
    return promoter(["promote", "--manifest", file, "--confirm", "--quiet"]);
  }

  async function editIndex(layout: string, edit: (index: { manifests: Record<string, unknown>[] }) => void) {
    const file = path.join(layout, "index.json");
    const index = JSON.parse(await readFile(file, "utf8")) as { manifests: Record<string, unknown>[] };
    edit(index);
    await writeFile(file, JSON.stringify(index));
  }

  beforeAll(async () => {
    outside = path.join(work, "outside");
    await mkdir(outside, { recursive: true });
    sentinel = path.join(outside, "sentinel.txt");
    await writeFile(sentinel, "outside the layout\n");
  });

  it("a ref.name annotation with .. segments", async () => {
    const run = await layoutCase("dotdot-ref", (layout) =>
      editIndex(layout, (index) => {
        index.manifests[0]!.annotations = {
          "org.opencontainers.image.ref.name": "../../../outside/sentinel.txt",
        };
      }),
    );
    expectClear(
      run,
      1,
      /ref\.name "\.\.\/\.\.\/\.\.\/outside\/sentinel\.txt" contains a "\." or "\.\." path segment/,
    );
  });

  it("a ref.name annotation that is an absolute path", async () => {
    const run = await layoutCase("absolute-ref", (layout) =>
      editIndex(layout, (index) => {
        index.manifests[0]!.annotations = { "org.opencontainers.image.ref.name": sentinel };
      }),
    );
    expectClear(run, 1, /looks like a path/);
  });

  it("a descriptor digest that is a path", async () => {
    const run = await layoutCase("path-digest", (layout) =>
      editIndex(layout, (index) => {
        index.manifests[0]!.digest = "sha256:../../../outside/sentinel.txt";
      }),
    );
    expectClear(run, 1, /index\.json.*digest|invalid digest/);
  });

  it("a blob that is a symlink out of the layout", async () => {
    const run = await layoutCase("symlinked-blob", async (layout) => {
      const config = allBlobs(image).find((blob) => blob.descriptor.mediaType.includes("config"))!;
      const file = path.join(layout, "blobs", "sha256", config.descriptor.digest.slice("sha256:".length));
      await rm(file);
      await symlink(sentinel, file);
    });
    expectClear(run, 1, /symlink|outside|leaves the layout/i);
  });

  it("a destination whose blob folder is a symlink out of the layout: nothing is written there", async () => {
    const destination = path.join(work, "out", "symlinked-destination", "app");
    const target = path.join(outside, "captured-blobs");
    await mkdir(path.join(destination, "blobs"), { recursive: true });
    await mkdir(target, { recursive: true });
    await writeFile(path.join(destination, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    await symlink(target, path.join(destination, "blobs", "sha256"));
    const run = await layoutCase("symlinked-destination", () => Promise.resolve());
    expectClear(run, 1, /symlink|outside|leaves/i);
    expect(await readdir(target)).toEqual([]);
    expect(await readFile(sentinel, "utf8")).toBe("outside the layout\n");
  });
});

describe("hostile YAML is refused quickly with a clear error", () => {
  const cases: [string, () => string, RegExp][] = [
    [
      "an alias bomb (billion laughs)",
      () => {
        // Eleven levels of ten aliases each, in the images list that the reader walks.
        const lines = [
          "registries:",
          "- name: gcr.io/staging",
          "  src: true",
          "- name: gcr.io/prod",
          "images:",
        ];
        lines.push('- name: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]');
        for (let i = 1; i <= 11; i++)
          lines.push(
            `- name: &a${i} [${Array(10)
              .fill(`*a${i - 1}`)
              .join(",")}]`,
          );
        return `${lines.join("\n")}\n`;
      },
      /error\[yaml-limit\]: .*more than 100 aliases/,
    ],
    [
      "very deep nesting",
      () => `registries: ${"[".repeat(5000)}${"]".repeat(5000)}\nimages: []\n`,
      /error\[yaml-limit\]: .*(deep|nesting|depth)/,
    ],
    [
      "a huge file",
      () => `# ${"x".repeat(100)}\n`.repeat(170_000) + "registries: []\nimages: []\n",
      /error\[yaml-limit\]: .*(larger|bytes|MiB)/,
    ],
  ];
  for (const [what, text, message] of cases) {
    it(what, async () => {
      const file = `yaml-${what.replace(/\W+/g, "-")}.yaml`;
      await writeFile(path.join(work, file), text());
      for (const command of ["validate", "promote"]) {
        const run = await promoter([command, "--manifest", file]);
        expectClear(run, 1, new RegExp(`${file.replace(/\./g, "\\.")}:\\d+:\\d+: ${message.source}`));
        // Refused up front: no parser blow-up (the process start is most of this).
        expect(run.ms).toBeLessThan(10_000);
      }
    });
  }
});
