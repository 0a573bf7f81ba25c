import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryLogger } from "../../log.js";
import { parseRepositoryPath, type RegistryHost } from "../../reference/index.js";
import type { RegistryError } from "../errors.js";
import { normalizeAuthKey } from "./auth-file.js";
import { CredentialStore } from "./credential-store.js";
import { credentialHelperEnvironment } from "./helper.js";
import {
  EnvCredentialSource,
  FileCredentialSource,
  defaultCredentialSources,
  registryAuthVariable,
} from "./sources.js";

const host = (name: string) => name as RegistryHost;
const basic = (user: string, password: string) => Buffer.from(`${user}:${password}`).toString("base64");

let directory: string;
let binDirectory: string;
const HELPER_SECRET = "helper-Secret-42";

beforeAll(async () => {
  directory = await mkdtemp(path.join(os.tmpdir(), "credentials-test-"));
  binDirectory = path.join(directory, "bin");
  await mkdir(binDirectory);
  // A credential helper: knows ghcr.io (password) and tokens.example (identity token); logs calls.
  const helper = `#!/bin/sh
read server
echo "$server" >> "${path.join(directory, "helper-calls")}"
case "$server" in
  ghcr.io) printf '{"ServerURL":"ghcr.io","Username":"helper-user","Secret":"${HELPER_SECRET}"}' ;;
  tokens.example) printf '{"ServerURL":"tokens.example","Username":"<token>","Secret":"refresh-abc"}' ;;
  https://index.docker.io/v1/) printf '{"ServerURL":"x","Username":"hub-user","Secret":"hub-pass"}' ;;
  slow.example) sleep 5 ;;
  broken.example) echo "keychain exploded: Bearer abcdefgh" >&2; exit 3 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`;
  await writeFile(path.join(binDirectory, "docker-credential-test"), helper);
  await chmod(path.join(binDirectory, "docker-credential-test"), 0o755);
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

function helperEnv() {
  return { PATH: `${binDirectory}:${process.env.PATH ?? "/usr/bin:/bin"}` };
}

async function writeJson(name: string, value: unknown): Promise<string> {
  const file = path.join(directory, name);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify(value));
  return file;
}

describe("credential file keys", () => {
  it("normalise schemes, API suffixes and Docker Hub aliases", () => {
    expect(normalizeAuthKey("https://index.docker.io/v1/")).toBe("docker.io");
    expect(normalizeAuthKey("registry-1.docker.io")).toBe("docker.io");
    expect(normalizeAuthKey("http://LOCALHOST:5000/v2/")).toBe("localhost:5000");
    expect(normalizeAuthKey("quay.io/team/repo")).toBe("quay.io/team/repo");
  });
});

describe("Docker config.json", () => {
  it("reads auth, username/password and identity tokens, matching hosts and Docker Hub's URL key", async () => {
    const file = await writeJson("docker/config.json", {
      auths: {
        "https://index.docker.io/v1/": { auth: basic("hubuser", "hub:pass:with:colons") },
        "registry.example:5000": { username: "u", password: "p4ssword" },
        "https://id.example": { auth: basic("<token>", ""), identitytoken: "refresh-token-1" },
        "placeholder.example": {},
      },
    });
    const source = new FileCredentialSource(file, { format: "docker", helperEnv: helperEnv() });
    expect(await source.lookup(host("docker.io"), undefined)).toEqual({
      kind: "basic",
      username: "hubuser",
      password: "hub:pass:with:colons",
      source: file,
    });
    expect(await source.lookup(host("registry.example:5000"), undefined)).toMatchObject({
      username: "u",
      password: "p4ssword",
    });
    expect(await source.lookup(host("id.example"), undefined)).toEqual({
      kind: "identity-token",
      username: "<token>",
      identityToken: "refresh-token-1",
      source: file,
    });
    expect(await source.lookup(host("placeholder.example"), undefined)).toBeUndefined();
    expect(await source.lookup(host("unknown.example"), undefined)).toBeUndefined();
  });

  it("asks credHelpers and credsStore programs, with Docker Hub's server URL", async () => {
    const file = await writeJson("helpers/config.json", {
      credHelpers: { "ghcr.io": "test", "tokens.example": "test", "missing.example": "absent-helper" },
      credsStore: "test",
      auths: { "inline.example": { auth: basic("inline", "inline-pass") } },
    });
    const source = new FileCredentialSource(file, { format: "docker", helperEnv: helperEnv() });
    expect(await source.lookup(host("ghcr.io"), undefined)).toEqual({
      kind: "basic",
      username: "helper-user",
      password: HELPER_SECRET,
      source: `docker-credential-test (${file} credHelpers)`,
    });
    expect(await source.lookup(host("tokens.example"), undefined)).toMatchObject({
      kind: "identity-token",
      identityToken: "refresh-abc",
    });
    // credsStore for hosts without their own helper; "not found" falls back to the inline entry.
    expect(await source.lookup(host("docker.io"), undefined)).toMatchObject({ username: "hub-user" });
    expect(await source.lookup(host("inline.example"), undefined)).toMatchObject({ username: "inline" });
    const error = await source.lookup(host("missing.example"), undefined).catch((caught: unknown) => caught);
    expect((error as RegistryError).code).toBe("registry-auth");
    expect((error as RegistryError).message).toContain("docker-credential-absent-helper");
    expect((error as RegistryError).message).toContain("is not on PATH");
  });

  it("reports a failing helper without echoing secrets, and times out a stuck one", async () => {
    const file = await writeJson("helpers2/config.json", { credsStore: "test" });
    const source = new FileCredentialSource(file, {
      format: "docker",
      helperEnv: helperEnv(),
      helperTimeoutMs: 300,
    });
    const broken = await source.lookup(host("broken.example"), undefined).catch((caught: unknown) => caught);
    expect((broken as RegistryError).message).toContain("exited with status 3");
    expect((broken as RegistryError).message).not.toContain("abcdefgh");
    const started = Date.now();
    const slow = await source.lookup(host("slow.example"), undefined).catch((caught: unknown) => caught);
    expect((slow as RegistryError).message).toContain("timed out");
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it("refuses an unparseable file by name, without its content", async () => {
    const file = path.join(directory, "bad/config.json");
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, '{"auths": {"x": {"auth": "c2VjcmV0"}} oops');
    const source = new FileCredentialSource(file, { format: "docker", helperEnv: {} });
    const error = await source.lookup(host("x"), undefined).catch((caught: unknown) => caught);
    expect((error as RegistryError).message).toContain(file);
    expect((error as RegistryError).message).not.toContain("c2VjcmV0");
  });
});

describe("containers auth.json", () => {
  it("picks the most specific repository path prefix", async () => {
    const file = await writeJson("containers/auth.json", {
      auths: {
        "quay.io": { auth: basic("host", "h") },
        "quay.io/team": { auth: basic("team", "t") },
        "quay.io/team/app": { auth: basic("app", "a") },
      },
    });
    const source = new FileCredentialSource(file, { format: "containers", helperEnv: {} });
    const userFor = async (repository: string | undefined) =>
      (
        (await source.lookup(
          host("quay.io"),
          repository === undefined ? undefined : parseRepositoryPath(repository),
        )) as {
          username: string;
        }
      ).username;
    expect(await userFor("team/app")).toBe("app");
    expect(await userFor("team/app/sub")).toBe("app");
    expect(await userFor("team/application")).toBe("team");
    expect(await userFor("other")).toBe("host");
    expect(await userFor(undefined)).toBe("host");
  });
});

describe("environment variables", () => {
  it("reads PROMOTER_AUTH_<HOST> and PROMOTER_REGISTRY_AUTH", async () => {
    expect(registryAuthVariable("ghcr.io")).toBe("PROMOTER_AUTH_GHCR_IO");
    expect(registryAuthVariable("127.0.0.1:5000")).toBe("PROMOTER_AUTH_127_0_0_1___5000");
    expect(registryAuthVariable("index.docker.io")).toBe("PROMOTER_AUTH_DOCKER_IO");
    const source = new EnvCredentialSource({
      PROMOTER_AUTH_GHCR_IO: "bot:ghp_token:with-colon",
      PROMOTER_REGISTRY_AUTH: JSON.stringify({
        auths: { "gcr.io/project": { username: "_json_key", password: "{}k" } },
      }),
      PROMOTER_AUTH_BAD_EXAMPLE: "no-colon",
    });
    expect(await source.lookup(host("ghcr.io"), undefined)).toEqual({
      kind: "basic",
      username: "bot",
      password: "ghp_token:with-colon",
      source: "$PROMOTER_AUTH_GHCR_IO",
    });
    expect(await source.lookup(host("gcr.io"), parseRepositoryPath("project/img"))).toMatchObject({
      username: "_json_key",
    });
    expect(await source.lookup(host("gcr.io"), parseRepositoryPath("other/img"))).toBeUndefined();
    const error = await source.lookup(host("bad.example"), undefined).catch((caught: unknown) => caught);
    expect((error as RegistryError).message).toContain("must be username:password");
    expect((error as RegistryError).message).not.toContain("no-colon");
  });
});

describe("credential helper environment", () => {
  it("passes what a helper needs and nothing of the promoter's secrets", () => {
    expect(
      credentialHelperEnvironment({
        PATH: "/bin",
        HOME: "/home/ci",
        LANG: "C.UTF-8",
        LC_ALL: "C",
        XDG_RUNTIME_DIR: "/run/user/1000",
        DOCKER_CONFIG: "/home/ci/.docker",
        https_proxy: "http://proxy:3128",
        AWS_ROLE_ARN: "arn:aws:iam::1:role/r",
        GOOGLE_APPLICATION_CREDENTIALS: "/key.json",
        VAULT_ADDR: "https://vault",
        VAULT_TOKEN: "hvs.vault",
        UNRELATED: "x",
        GITHUB_TOKEN: "ghs_secret",
        REGISTRY_AUTH_FILE: "/auth.json",
        PROMOTER_SIGN_KEY: "key",
        PROMOTER_AUTH_GHCR_IO: "u:p",
        PROMOTER_REGISTRY_AUTH: "{}",
        PROMOTER_CREDENTIAL_HELPER_ENV: "VAULT_ADDR, VAULT_TOKEN PROMOTER_SIGN_KEY",
        EMPTY: undefined,
      }),
    ).toEqual({
      PATH: "/bin",
      HOME: "/home/ci",
      LANG: "C.UTF-8",
      LC_ALL: "C",
      XDG_RUNTIME_DIR: "/run/user/1000",
      DOCKER_CONFIG: "/home/ci/.docker",
      https_proxy: "http://proxy:3128",
      AWS_ROLE_ARN: "arn:aws:iam::1:role/r",
      GOOGLE_APPLICATION_CREDENTIALS: "/key.json",
      VAULT_ADDR: "https://vault",
      VAULT_TOKEN: "hvs.vault",
    });
  });
});

describe("PROMOTER_AUTH_<HOST> spelling", () => {
  it("gives look-alike hosts, ports and Docker Hub's aliases the variables they should have", () => {
    const spelled = (name: string) => registryAuthVariable(name).slice("PROMOTER_AUTH_".length);
    expect(spelled("registry.k8s.io")).toBe("REGISTRY_K8S_IO");
    expect(spelled("registry-k8s.io")).toBe("REGISTRY__K8S_IO");
    expect(spelled("registry.k8s-io")).toBe("REGISTRY_K8S__IO");
    expect(spelled("registry.k8s.io:443")).toBe("REGISTRY_K8S_IO___443");
    expect(spelled("registry.k8s.io.443")).toBe("REGISTRY_K8S_IO_443");
    expect(spelled("xn--bcher-kva.example")).toBe("XN____BCHER__KVA_EXAMPLE");
    expect(spelled("us-central1-docker.pkg.dev")).toBe("US__CENTRAL1__DOCKER_PKG_DEV");
    // Host names are case-insensitive: one registry, one variable.
    expect(spelled("Registry.K8s.IO")).toBe("REGISTRY_K8S_IO");
    for (const alias of ["docker.io", "index.docker.io", "registry-1.docker.io"]) {
      expect(spelled(alias)).toBe("DOCKER_IO");
    }
    expect(() => registryAuthVariable("[::1]:5000")).toThrow(/PROMOTER_REGISTRY_AUTH/);
  });

  it("never maps two hosts to one variable", () => {
    const labels = ["a", "a1", "1", "b-c", "b--c", "x"];
    const hosts = new Set<string>();
    for (const first of labels) {
      for (const second of labels) {
        for (const third of ["", ".io", "-io", ".io-x"]) {
          hosts.add(`${first}.${second}${third}`);
          hosts.add(`${first}-${second}${third}`);
          hosts.add(`${first}.${second}${third}:5000`);
          hosts.add(`${first}.${second}${third}.5000`);
          hosts.add(`${first}-${second}${third}-5000`);
        }
      }
    }
    const owners = new Map<string, string>();
    for (const name of hosts) {
      const variable = registryAuthVariable(name);
      expect(owners.get(variable), `${name} and ${owners.get(variable)} share ${variable}`).toBeUndefined();
      owners.set(variable, name);
    }
  });

  it("refuses a variable under the old spelling with one line naming the new one, and sends nothing", async () => {
    const source = new EnvCredentialSource({
      PROMOTER_AUTH_REGISTRY_K8S_IO: "real:Real-pw-1",
      PROMOTER_AUTH_127_0_0_1_5000: "local:Local-pw-2",
      PROMOTER_AUTH____1__5000: "six:Six-pw-3",
    });
    // The variable is registry.k8s.io's: used there, refused for the look-alike.
    expect(await source.lookup(host("registry.k8s.io"), undefined)).toMatchObject({ username: "real" });
    const lookAlike = await source
      .lookup(host("registry-k8s.io"), undefined)
      .catch((caught: unknown) => caught);
    expect((lookAlike as RegistryError).code).toBe("registry-auth");
    expect((lookAlike as RegistryError).summary).toBe(
      "not using $PROMOTER_AUTH_REGISTRY_K8S_IO for registry-k8s.io: that variable is registry.k8s.io's " +
        "(dots, dashes and a port's colon are spelled apart so that look-alike hosts never share one); " +
        "registry-k8s.io's is $PROMOTER_AUTH_REGISTRY__K8S_IO",
    );
    const port = await source.lookup(host("127.0.0.1:5000"), undefined).catch((caught: unknown) => caught);
    expect((port as RegistryError).summary).toContain("127.0.0.1:5000's is $PROMOTER_AUTH_127_0_0_1___5000");
    const ipv6 = await source.lookup(host("[::1]:5000"), undefined).catch((caught: unknown) => caught);
    expect((ipv6 as RegistryError).summary).toContain("is no registry's");
    expect((ipv6 as RegistryError).summary).toContain("goes in $PROMOTER_REGISTRY_AUTH");
    for (const error of [lookAlike, port, ipv6]) expect((error as Error).message).not.toMatch(/pw-\d/);
    // The new name wins over the old one where both are set.
    const both = new EnvCredentialSource({
      PROMOTER_AUTH_127_0_0_1_5000: "old:Old-pw",
      PROMOTER_AUTH_127_0_0_1___5000: "new:New-pw",
    });
    expect(await both.lookup(host("127.0.0.1:5000"), undefined)).toMatchObject({ username: "new" });
    expect(new EnvCredentialSource({}).describe(host("[::1]:5000"))).toEqual(["$PROMOTER_REGISTRY_AUTH"]);
  });
});

describe("default sources", () => {
  it("ask the environment, then the files of containers-auth.json(5) in containers/image's order", () => {
    const home = path.join(directory, "home");
    const runtime = path.join(directory, "run");
    const sources = defaultCredentialSources({ env: { XDG_RUNTIME_DIR: runtime }, homeDirectory: home });
    const store = new CredentialStore(sources);
    expect(store.places(host("r.example"))).toEqual([
      "$PROMOTER_AUTH_R_EXAMPLE",
      "$PROMOTER_REGISTRY_AUTH",
      path.join(runtime, "containers", "auth.json"),
      path.join(home, ".config", "containers", "auth.json"),
      path.join(home, ".docker", "config.json"),
      path.join(home, ".dockercfg"),
    ]);
    // Without XDG_RUNTIME_DIR (root's CI job, no login session): /run/containers/<uid>; an
    // XDG_CONFIG_HOME and a DOCKER_CONFIG take the place of their defaults.
    const session = defaultCredentialSources({
      env: { XDG_CONFIG_HOME: "/cfg", DOCKER_CONFIG: "/d" },
      homeDirectory: home,
      userId: 1234,
    });
    expect(new CredentialStore(session).places(host("r.example")).slice(2)).toEqual([
      "/run/containers/1234/auth.json",
      "/cfg/containers/auth.json",
      "/d/config.json",
      path.join(home, ".dockercfg"),
    ]);
    // REGISTRY_AUTH_FILE is an explicit choice: no other file is read.
    const explicit = defaultCredentialSources({
      env: { REGISTRY_AUTH_FILE: "/a/auth.json", DOCKER_CONFIG: "/d" },
      homeDirectory: home,
    });
    expect(new CredentialStore(explicit).places(host("r.example")).slice(2)).toEqual(["/a/auth.json"]);
  });

  it("read Docker's old ~/.dockercfg (no auths wrapper) and say which file a credential came from", async () => {
    const home = path.join(directory, "legacy-home");
    await writeJson("legacy-home/.dockercfg", {
      "https://r.example/v1/": { auth: basic("old", "Old-pw-1"), email: "x@example.com" },
    });
    const logger = new MemoryLogger();
    const store = new CredentialStore(
      defaultCredentialSources({
        env: { XDG_RUNTIME_DIR: path.join(directory, "none") },
        homeDirectory: home,
      }),
      logger,
    );
    expect(await store.lookup(host("r.example"), undefined)).toMatchObject({ username: "old" });
    await store.lookup(host("r.example"), parseRepositoryPath("again"));
    expect(logger.lines.map((line) => line.message)).toEqual([
      `credentials for r.example from ${path.join(home, ".dockercfg")}`,
    ]);
    expect(JSON.stringify(logger.lines)).not.toContain("Old-pw-1");
  });

  it("take the first source with a credential and remember the answer", async () => {
    const dockerConfig = path.join(directory, "first");
    await writeJson("first/config.json", { auths: { "r.example": { auth: basic("docker", "d") } } });
    const authFile = await writeJson("first/auth.json", {
      auths: { "r.example": { auth: basic("containers", "c") } },
    });
    const store = new CredentialStore(
      defaultCredentialSources({
        env: { REGISTRY_AUTH_FILE: authFile, DOCKER_CONFIG: dockerConfig },
        homeDirectory: path.join(directory, "nohome"),
      }),
    );
    expect(await store.lookup(host("r.example"), undefined)).toMatchObject({ username: "containers" });
    await writeJson("first/auth.json", {});
    expect(await store.lookup(host("r.example"), undefined)).toMatchObject({ username: "containers" });
    expect(await store.lookup(host("other.example"), undefined)).toBeUndefined();
  });
});
