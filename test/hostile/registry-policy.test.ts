import { existsSync } from "node:fs";
import { generateKeyPairSync } from "node:crypto";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStoreProvider } from "../../src/registry/index.js";
import { parseImageReference, parseTag } from "../../src/reference/index.js";
import {
  commitAll,
  git,
  imagesYaml,
  registriesYaml,
  runPromoter,
  STACK_LINE,
  writeTree,
} from "../support/hostile-registry-policy.js";
import { pubSubPush } from "../support/hostile-auditor.js";
import { PromoterProcess } from "../support/promoter-process.js";
import { findFreePort, startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { listTags } from "../support/registry-judge.js";
import { ScriptedRegistry, sendJson } from "../support/scripted-registry.js";
import { makeImage, pushTagsWithSkopeo, writeOciLayoutDirectly } from "../support/test-images.js";

/**
 * Untrusted pull requests, finding 7 ("registries named in a PR are contacted") and trust under
 * attack, finding 10 ("the internal-address check misses NAT64, 6to4, IPv4-compatible ...").
 * A pull-request author writes every file of the manifest tree, registries included, and CI runs
 * `validate`, `check --base` and a dry-run `promote --changed-since` on it before anyone
 * reviewed it. The registries a manifest names must be refused before any request when they are
 * on this machine or a private network (in any spelling), and `oci:` layouts must stay inside
 * the tree, unless the operator (not the tree) allows them.
 */

const hello = makeImage({ layers: 1, layerSize: 1024, mediaTypes: "oci", seed: "policy-hello" });
const secret = makeImage({ layers: 1, layerSize: 512, mediaTypes: "oci", seed: "policy-secret" });

let work: string;
/** Stands in for a service on the CI machine (a metadata endpoint, a local daemon's API). */
let internal: ScriptedRegistry;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), "hostile-registry-policy-"));
  internal = await ScriptedRegistry.start();
  internal.on(undefined, /.*/, (_request, response) => {
    sendJson(response, 200, { AccessKeyId: "internal-only", Token: "internal-secret" });
  });
});

afterAll(async () => {
  await internal.stop();
  await rm(work, { recursive: true, force: true });
});

/** Every spelling of an internal address a manifest could use for the internal service. */
function internalSpellings(port: number): Record<string, string> {
  return {
    v4: `127.0.0.1:${port}`,
    localhost: `localhost:${port}`,
    mapped: `[::ffff:7f00:1]:${port}`,
    "mapped-dotted": `[::ffff:127.0.0.1]:${port}`,
    hex: `0x7f.1:${port}`,
    decimal: `2130706433:${port}`,
    short: `127.1:${port}`,
    octal: `0177.0.0.1:${port}`,
    "leading-zero-port": `127.0.0.1:0${port}`,
  };
}

describe("validate: which registries a manifest may name", () => {
  it("reports every internal, non-canonical or escaping registry name at its file, line and column", async () => {
    const dir = await mkdtemp(path.join(work, "validate-"));
    const refused = [
      "169.254.169.254/latest",
      "[::ffff:7f00:1]:5000/x",
      "[::ffff:127.0.0.1]:5000/x",
      "[::7f00:1]:5000/x",
      "[64:ff9b::7f00:1]:5000/x",
      "[2002:7f00:1::]:5000/x",
      "[::1]:5000/x",
      "[0:0:0:0:0:0:0:1]:5000/x",
      "[fe80::1]:5000/x",
      "[fd00::1]/x",
      "[::FFFF:7F00:1]/x",
      "0x7f.1:5000/x",
      "2130706433:5000/x",
      "127.1:5000/x",
      "017700000001/x",
      "0177.0.0.1/x",
      "127.0.0.1:5000/x",
      "127.0.0.1:00443/x",
      "registry.example.com:00443/x",
      "registry.example.com:0/x",
      "0.0.0.0:5000/x",
      "10.1.2.3/x",
      "172.16.0.1/x",
      "192.168.1.1/x",
      "100.64.0.1/x",
      "localhost:5000/x",
      "LOCALHOST:5000/x",
      "registry.localhost/x",
      "Registry.Example.com/x",
      "metadata:5000/x",
      "metadata:80/x",
      "metadata.google.internal/x",
      "oci:../../../../etc",
      "oci:/etc",
      "oci:layouts/../../outside",
    ];
    const lines = [
      "registries:",
      "- name: registry.example.com/staging",
      "  src: true",
      ...refused.map((name) => `- name: ${JSON.stringify(name)}`),
      "images: []",
      "",
    ];
    const file = path.join(dir, "manifest.yaml");
    await writeFile(file, lines.join("\n"));

    const run = await runPromoter(dir, ["validate", "--manifest", "manifest.yaml"]);
    expect(run.status).toBe(1);
    expect(run.stderr).not.toMatch(STACK_LINE);
    const missed = refused.filter((name, index) => {
      const line = 4 + index;
      return !new RegExp(`^manifest\\.yaml:${line}:9: error\\[`, "m").test(run.stdout);
    });
    expect(missed, run.stdout).toEqual([]);
  });

  it("accepts public registry names and in-tree oci: layouts without any option", async () => {
    const dir = await mkdtemp(path.join(work, "validate-honest-"));
    await writeFile(
      path.join(dir, "manifest.yaml"),
      [
        "registries:",
        "- name: gcr.io/k8s-staging-foo",
        "  src: true",
        "- name: us-docker.pkg.dev/k8s-artifacts-prod/images/foo",
        "- name: registry.example.com:5000/prod",
        "- name: 8.8.8.8/prod",
        '- name: "[2001:4860:4860::8888]:443/prod"',
        "- name: oci:layouts/prod",
        "- name: oci:./mirror",
        "images: []",
        "",
      ].join("\n"),
    );
    const run = await runPromoter(dir, ["validate", "--manifest", "manifest.yaml"]);
    expect(run.stdout).toContain("0 errors, 0 warnings: valid");
    expect(run.status).toBe(0);
  });
});

describe("a pull request that names internal registries", () => {
  let repo: string;

  beforeAll(async () => {
    repo = await mkdtemp(path.join(work, "pr-"));
    // The reviewed tree: one project promoting between OCI layouts inside the tree (no network).
    await writeOciLayoutDirectly(path.join(repo, "staging", "hello"), [{ content: hello, tag: "v1.0.0" }]);
    await writeTree(repo, {
      "manifests/hello/promoter-manifest.yaml": registriesYaml("oci:../../staging", ["oci:../../prod"]),
      "images/hello/images.yaml": imagesYaml([{ name: "hello", digest: hello.digest, tags: ["v1.0.0"] }]),
    });
    commitAll(repo, "The reviewed tree", true);

    // The pull request: projects whose source is the internal service, in every spelling, and
    // a registry policy file that tries to allow them.
    git(repo, "switch", "-q", "-c", "pr");
    const spellings = internalSpellings(internal.port);
    const files: Record<string, string> = {
      "manifests/registry-policy.yaml": `registries:\n${Object.values(spellings)
        .map((name) => `- ${JSON.stringify(name)}\n`)
        .join("")}`,
    };
    for (const [label, host] of Object.entries(spellings)) {
      files[`manifests/evil-${label}/promoter-manifest.yaml`] = registriesYaml(
        JSON.stringify(`${host}/latest`),
        ["oci:../../prod"],
      );
      files[`images/evil-${label}/images.yaml`] = imagesYaml([
        { name: `meta-data-${label}`, digest: secret.digest, tags: ["v1"] },
      ]);
    }
    await writeTree(repo, files);
    commitAll(repo, "Promote from the metadata service");
  });

  const expectRefusedEveryProject = (output: string) => {
    for (const label of Object.keys(internalSpellings(internal.port))) {
      expect(output).toContain(`manifests/evil-${label}/promoter-manifest.yaml:2:9`);
    }
  };

  it("check --base never sends a request to them and fails naming each one", async () => {
    internal.requests.length = 0;
    const run = await runPromoter(repo, ["check", "--base", "main", "--thin-manifest-dir", ".", "--quiet"]);
    expect(internal.requests.map((request) => `${request.method} ${request.path}`)).toEqual([]);
    expect(run.stderr).not.toMatch(STACK_LINE);
    expect(run.status).toBe(1);
    expectRefusedEveryProject(run.stdout);
    expect(run.stdout).not.toContain("internal-secret");
  });

  it("the dry-run plan of the pull request (promote --changed-since) never sends a request to them", async () => {
    internal.requests.length = 0;
    const run = await runPromoter(repo, [
      "promote",
      "--thin-manifest-dir",
      ".",
      "--changed-since",
      "main",
      "--output",
      "json",
      "--quiet",
    ]);
    expect(internal.requests.map((request) => `${request.method} ${request.path}`)).toEqual([]);
    expect(run.stderr).not.toMatch(STACK_LINE);
    expect(run.status).toBe(1);
    expectRefusedEveryProject(run.stderr);
  });

  it("promote --confirm after a merge never sends a request to them and still promotes the rest", async () => {
    internal.requests.length = 0;
    const run = await runPromoter(repo, ["promote", "--thin-manifest-dir", ".", "--confirm", "--quiet"]);
    expect(internal.requests.map((request) => `${request.method} ${request.path}`)).toEqual([]);
    expect(run.stderr).not.toMatch(STACK_LINE);
    expect(run.status).toBe(1);
    expectRefusedEveryProject(run.stderr);
    // The reviewed project is promoted as before.
    expect(existsSync(path.join(repo, "prod", "hello", "index.json"))).toBe(true);
  });
});

describe("oci: layouts stay inside the manifest tree", () => {
  it("promote refuses a destination outside the tree (.., absolute, or through a symbolic link) and writes nothing there", async () => {
    const dir = await mkdtemp(path.join(work, "oci-"));
    const tree = path.join(dir, "tree");
    const outside = path.join(dir, "outside");
    await mkdir(outside);
    await writeOciLayoutDirectly(path.join(tree, "staging", "hello"), [{ content: hello, tag: "v1.0.0" }]);
    await symlink(outside, path.join(tree, "escape"));
    await writeTree(tree, {
      "manifest.yaml": [
        "registries:",
        "- name: oci:staging",
        "  src: true",
        "- name: oci:../outside/dotdot",
        `- name: oci:${path.join(outside, "absolute")}`,
        "- name: oci:escape/linked",
        "- name: oci:prod",
        "images:",
        imagesYaml([{ name: "hello", digest: hello.digest, tags: ["v1.0.0"] }]),
      ].join("\n"),
    });
    const run = await runPromoter(tree, ["promote", "--manifest", "manifest.yaml", "--confirm", "--quiet"]);
    expect(run.stderr).not.toMatch(STACK_LINE);
    expect(await readdir(outside)).toEqual([]);
    expect(run.status).toBe(1);
    for (const line of [4, 5, 6]) expect(run.stderr).toContain(`manifest.yaml:${line}:9: error[`);
    // The destination inside the tree is promoted.
    expect(existsSync(path.join(tree, "prod", "hello", "index.json"))).toBe(true);
  });
});

describe("the operator allows local registries explicitly", () => {
  let staging: TestRegistry;
  let prod: TestRegistry;
  let dir: string;

  beforeAll(async () => {
    [staging, prod] = await Promise.all([startRegistry(), startRegistry()]);
    dir = await mkdtemp(path.join(work, "allow-"));
    await pushTagsWithSkopeo(dir, staging.host, "staging/hello", [{ content: hello, tag: "v1.0.0" }]);
    await writeTree(dir, {
      "manifest.yaml": [
        registriesYaml(`${staging.host}/staging`, [`${prod.host}/prod`]),
        "images:\n",
        imagesYaml([{ name: "hello", digest: hello.digest, tags: ["v1.0.0"] }]),
      ].join(""),
    });
  });

  afterAll(async () => {
    await Promise.all([staging.stop(), prod.stop()]);
  });

  it("without --allow-registry a loopback registry is refused before any request, in one line naming it", async () => {
    const run = await runPromoter(dir, ["promote", "--manifest", "manifest.yaml", "--confirm", "--quiet"]);
    expect(run.status).toBe(1);
    expect(run.stderr).not.toMatch(STACK_LINE);
    expect(run.stderr).toContain(`manifest.yaml:2:9: error[registry-not-allowed]`);
    expect(run.stderr).toContain(staging.host);
    expect(await listTags(prod.url, "prod/hello")).toEqual([]);
  });

  it("--allow-registry HOST:PORT keeps them working", async () => {
    const run = await runPromoter(dir, [
      "promote",
      "--manifest",
      "manifest.yaml",
      "--confirm",
      "--quiet",
      "--allow-registry",
      staging.host,
      "--allow-registry",
      prod.host,
    ]);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(await listTags(prod.url, "prod/hello")).toEqual(["v1.0.0"]);
  });

  it("--allow-registry refuses a non-canonical spelling", async () => {
    const run = await runPromoter(dir, [
      "validate",
      "--manifest",
      "manifest.yaml",
      "--allow-registry",
      `127.0.0.1:0${prod.host.split(":")[1] ?? ""}`,
    ]);
    expect(run.status).toBe(2);
    expect(run.stderr.trim().split("\n")).toHaveLength(1);
  });
});

describe("connections are checked after name resolution", () => {
  it("a public-looking registry name that resolves to an internal address is refused at connect", async () => {
    internal.requests.length = 0;
    const provider = createStoreProvider({
      // What a hostile DNS answer does: the name resolves to this machine.
      hostAddresses: { "registry.example.com": "127.0.0.1" },
      insecureRegistries: [`registry.example.com:${internal.port}`],
      internalAddresses: { refuse: true, allowed: [] },
    });
    try {
      const reference = parseImageReference(`registry.example.com:${internal.port}/latest/meta-data:v1`);
      const store = provider.repository({
        kind: "remote",
        host: reference.registry,
        repository: reference.repository,
      });
      await expect(
        store.resolve(reference.tag ?? parseTag("v1"), { signal: AbortSignal.timeout(20_000) }),
      ).rejects.toThrow(/resolves to 127\.0\.0\.1, a loopback address/);
    } finally {
      await provider.close();
    }
    expect(internal.requests).toEqual([]);
  });
});

describe("every command that reads registries applies the policy, not only check and promote", () => {
  /**
   * verify, audit reconcile, audit serve, manifest add and snapshot read the registries a manifest (or an
   * argument) names, and ran without the registry policy or the connect-time guard: a tree naming
   * the CI machine's internal service had each of them send it requests. They now refuse it as
   * promote does, before any request, unless the operator allows it with --allow-registry.
   */
  let repo: string;

  beforeAll(async () => {
    repo = await mkdtemp(path.join(work, "commands-"));
    const key = generateKeyPairSync("ec", { namedCurve: "P-256" });
    await writeTree(repo, {
      "manifests/meta/promoter-manifest.yaml": registriesYaml(`127.0.0.1:${internal.port}/latest`, [
        `127.0.0.1:${internal.port}/prod`,
      ]),
      "images/meta/images.yaml": imagesYaml([{ name: "meta-data", digest: secret.digest, tags: ["v1"] }]),
      "cosign.pub": key.publicKey.export({ type: "spki", format: "pem" }).toString(),
    });
  });

  const commands: Record<string, () => readonly string[]> = {
    verify: () => ["verify", "--thin-manifest-dir", ".", "--public-key", "cosign.pub", "--quiet"],
    "audit reconcile": () => ["audit", "reconcile", "--thin-manifest-dir", "."],
    "manifest add": () => [
      "manifest",
      "add",
      "--thin-manifest-dir",
      ".",
      "--project",
      "meta",
      "--image",
      "meta-data",
      "--tag",
      "v2",
      "--dry-run",
    ],
    snapshot: () => ["snapshot", `127.0.0.1:${internal.port}/prod`, "--repository", "meta-data"],
  };

  for (const [name, args] of Object.entries(commands)) {
    it(`${name} never sends a request to an internal registry the tree names`, async () => {
      internal.requests.length = 0;
      const run = await runPromoter(repo, args());
      expect(internal.requests.map((request) => `${request.method} ${request.path}`)).toEqual([]);
      expect(run.stderr).not.toMatch(STACK_LINE);
      expect(run.status).toBe(1);
      expect(run.stderr + run.stdout).toMatch(
        new RegExp(
          `127\\.0\\.0\\.1:${internal.port} is a loopback address \\(127\\.0\\.0\\.0/8\\); only the operator can allow`,
        ),
      );
      expect(run.stdout + run.stderr).not.toContain("internal-secret");
      expect(await readFile(path.join(repo, "images/meta/images.yaml"), "utf8")).not.toContain("v2");
    });
  }

  it("audit serve never reads an internal registry the manifests name, whatever events arrive", async () => {
    const auditPort = await findFreePort();
    await writeTree(repo, { token: "policy-ingest-token-5e1d\n" });
    await chmod(path.join(repo, "token"), 0o600);
    const serve = PromoterProcess.start(
      [
        "audit",
        "serve",
        "--thin-manifest-dir",
        ".",
        "--listen",
        `127.0.0.1:${auditPort}`,
        "--token-file",
        "token",
        "--db",
        "audit.db",
        "--pending-grace",
        "0",
        "--log-level",
        "debug",
      ],
      { cwd: repo, allowLoopbackRegistries: false },
    );
    try {
      await serve.waitFor(
        (stdout) => (stdout.includes('"audit server listening"') ? true : undefined),
        60_000,
      );
      internal.requests.length = 0;
      // A push to that production registry, which the auditor would read to judge: a digest
      // without a tag (is it a child of a promoted index? an attachment?).
      const push = pubSubPush("policy-1", {
        action: "INSERT",
        digest: `127.0.0.1:${internal.port}/prod/meta-data@${hello.digest}`,
      });
      const response = await fetch(`http://127.0.0.1:${auditPort}/pubsub?token=policy-ingest-token-5e1d`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(push),
      });
      expect(response.status).toBe(200);
      // The refused registry is in no desired state: the event is not one to judge by reading it.
      expect(await response.json()).toMatchObject({ accepted: 0, ignored: 1 });
      await serve.waitFor(
        (stdout) => (stdout.includes("is in no registry the manifests name") ? true : undefined),
        30_000,
      );
      expect(internal.requests.map((request) => `${request.method} ${request.path}`)).toEqual([]);
      expect(serve.stdout).toContain("registry-not-allowed");
      expect(serve.stdout).not.toContain("internal-secret");
    } finally {
      await serve.stop();
    }
  });

  it("snapshot of an allowed registry does not follow its redirect to an internal address (the connect-time guard)", async () => {
    const front = await ScriptedRegistry.start();
    try {
      front.on("GET", "/v2/", (_request, response) => {
        sendJson(response, 200, {});
      });
      front.on("GET", "/v2/prod/app/tags/list", (_request, response) => {
        sendJson(response, 200, { name: "prod/app", tags: ["v1"] });
      });
      front.on(undefined, /\/manifests\//, (request, response) => {
        response.writeHead(307, { location: `http://127.0.0.1:${internal.port}${request.path}` });
        response.end();
      });
      internal.requests.length = 0;
      const run = await runPromoter(repo, [
        "snapshot",
        `127.0.0.1:${front.port}/prod`,
        "--repository",
        "app",
        "--allow-registry",
        `127.0.0.1:${front.port}`,
      ]);
      expect(front.requestsTo(/\/manifests\//).length).toBeGreaterThan(0);
      expect(internal.requests.map((request) => `${request.method} ${request.path}`)).toEqual([]);
      expect(run.stderr).not.toMatch(STACK_LINE);
      expect(run.status).toBe(2);
      expect(run.stderr).toContain(`127.0.0.1:${internal.port}`);
      expect(run.stdout).not.toContain("internal-secret");
    } finally {
      await front.stop();
    }
  });
});

describe("which revision's allow-list promote --changed-since uses", () => {
  /**
   * The merge job runs `promote --changed-since <last successful promotion> --confirm`, and that
   * revision can be several merges old. It read the allow-list there: a mirror the reviewed tree
   * had since dropped from `manifests/registry-policy.yaml` (retired, or compromised) was still
   * allowed for every change made in between. A run that writes uses the working copy's
   * allow-list (the reviewed tree it promotes); the dry-run plan of a pull request keeps the base
   * revision's, as check does, so a pull request cannot widen its own.
   */
  let repo: string;
  const policyFile = (registries: readonly string[]) =>
    `registries:\n${registries.map((name) => `- ${name}\n`).join("")}`;

  beforeAll(async () => {
    repo = await mkdtemp(path.join(work, "policy-revision-"));
    await writeOciLayoutDirectly(path.join(repo, "staging", "hello"), [{ content: hello, tag: "v1.0.0" }]);
    await writeTree(repo, {
      ".gitignore": "/prod/\n",
      "manifests/registry-policy.yaml": policyFile(["good.example.com", "retired.example.com"]),
      "manifests/hello/promoter-manifest.yaml": registriesYaml("oci:../../staging", ["oci:../../prod"]),
      "images/hello/images.yaml": imagesYaml([{ name: "hello", digest: hello.digest, tags: ["v1.0.0"] }]),
    });
    commitAll(repo, "The last promoted commit", true);
    git(repo, "tag", "last-promoted");
    // A project on the mirror that is still allowed, merged before the mirror was dropped.
    await writeTree(repo, {
      "manifests/late/promoter-manifest.yaml": registriesYaml("retired.example.com/staging", [
        "oci:../../prod",
      ]),
      "images/late/images.yaml": imagesYaml([{ name: "late", digest: secret.digest, tags: ["v1"] }]),
    });
    commitAll(repo, "A project on the retired mirror");
    await writeTree(repo, {
      "manifests/registry-policy.yaml": policyFile(["good.example.com"]),
    });
    commitAll(repo, "Drop the retired mirror from the allow-list");
  });

  it("the merge job (--confirm) refuses a registry the reviewed allow-list dropped since REV", async () => {
    const run = await runPromoter(repo, [
      "promote",
      "--thin-manifest-dir",
      ".",
      "--changed-since",
      "last-promoted",
      "--confirm",
      "--quiet",
    ]);
    expect(run.stderr).not.toMatch(STACK_LINE);
    expect(run.stderr).toMatch(
      /manifests\/late\/promoter-manifest\.yaml:2:9: error\[registry-not-allowed\]: registry "retired\.example\.com\/staging" is not used: it is not in the registry policy manifests\/registry-policy\.yaml/,
    );
    expect(run.status).toBe(1);
  });

  it("a pull request's dry-run plan cannot widen the allow-list it is judged by", async () => {
    git(repo, "switch", "-q", "-c", "widen");
    await writeTree(repo, {
      "manifests/registry-policy.yaml": policyFile(["good.example.com", "attacker.example.com"]),
      "manifests/evil/promoter-manifest.yaml": registriesYaml("attacker.example.com/staging", [
        "oci:../../prod",
      ]),
      "images/evil/images.yaml": imagesYaml([{ name: "evil", digest: secret.digest, tags: ["v1"] }]),
    });
    commitAll(repo, "Allow and use the attacker's registry");
    try {
      const run = await runPromoter(repo, [
        "promote",
        "--thin-manifest-dir",
        ".",
        "--changed-since",
        "main",
        "--quiet",
      ]);
      expect(run.stderr).not.toMatch(STACK_LINE);
      expect(run.stderr).toMatch(
        /manifests\/evil\/promoter-manifest\.yaml:2:9: error\[registry-not-allowed\]: registry "attacker\.example\.com\/staging" is not used: it is not in the registry policy/,
      );
      expect(run.status).toBe(1);
    } finally {
      git(repo, "switch", "-q", "main");
    }
  });
});
