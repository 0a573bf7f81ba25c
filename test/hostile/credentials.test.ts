import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { registryAuthVariable } from "../../src/registry/index.js";
import {
  HostileRegistry,
  eventually,
  writeEnvironmentDumpingHelper,
} from "../support/hostile-credentials.js";
import { expectClear, runPromoter as runPromoterProcess } from "../support/promoter-process.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { makeImage } from "../support/test-images.js";

/**
 * Credentials, refresh tokens and access tokens stay with the registry origin they belong to
 * (docs/registries.md, "Credentials" and "Authentication protocol"). Every case runs
 * bin/promoter.js as a child process against a real distribution registry (the production
 * mirror, token auth) and a hostile registry on 127.0.0.1 that plays the attacker: a staging
 * registry a staging pusher or a compromised mirror controls, or a host a pull request names.
 */

const repoRoot = path.resolve(import.meta.dirname, "../..");
const ROBOT = "robot";
const ROBOT_PASSWORD = "Robot-pw-5d1f3c9a8b7e6f20";

let work: string;
let mirror: TestRegistry;
/** The mirror's identity token for the robot (what `docker login` stores as `identitytoken`). */
let mirrorIdentityToken: string;
const hostiles: HostileRegistry[] = [];

const image = makeImage({ layers: 1, layerSize: 1024, mediaTypes: "oci", seed: "hostile-credentials" });

/** A JSON Web Token's claims (the mirror's token server mints ES256 JWTs). */
function jwtClaims(authorization: string): { sub?: string; aud?: string } | undefined {
  const token = /^Bearer (\S+)$/.exec(authorization)?.[1];
  const payload = token?.split(".")[1];
  if (payload === undefined) return undefined;
  try {
    return JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { sub?: string; aud?: string };
  } catch {
    return undefined;
  }
}

async function writeDockerConfig(name: string, document: unknown): Promise<string> {
  const directory = path.join(work, name);
  await mkdir(directory, { recursive: true });
  await writeFile(path.join(directory, "config.json"), JSON.stringify(document));
  return directory;
}

/** A promotion manifest: `app` at `source` -> `destination`, tagged v1. */
async function writeManifest(name: string, source: string, destination: string): Promise<string> {
  const file = path.join(work, `${name}.yaml`);
  await writeFile(
    file,
    [
      "registries:",
      `- name: ${source}`,
      "  src: true",
      `- name: ${destination}`,
      "images:",
      "- name: app",
      "  dmap:",
      `    "${image.digest}": ["v1"]`,
      "",
    ].join("\n"),
  );
  return file;
}

function baseEnv(extra: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: work, ...extra };
}

/** The CLI with exactly the environment a case gives (no PATH or HOME of the test's). */
function runPromoter(
  args: readonly string[],
  options: { readonly cwd: string; readonly env: Readonly<Record<string, string>> },
): ReturnType<typeof runPromoterProcess> {
  return runPromoterProcess(args, { ...options, exactEnv: true });
}

async function startHostile(options: Parameters<typeof HostileRegistry.start>[0]): Promise<HostileRegistry> {
  const hostile = await HostileRegistry.start(options);
  hostiles.push(hostile);
  return hostile;
}

/** Resolves once the mirror's token server has exchanged the robot's refresh token. */
function mirrorRefreshed(): Promise<void> {
  return eventually(() =>
    (mirror.tokenServer?.requests ?? []).some(
      (request) => request.grantType === "refresh_token" && request.status === 200,
    ),
  ).then(() => undefined);
}

beforeAll(async () => {
  if (!existsSync(path.join(repoRoot, "dist", "cli", "entry.js"))) {
    throw new Error("dist/ is missing: run `npm run build` before the hostile tests");
  }
  work = await mkdtemp(path.join(tmpdir(), "hostile-credentials-"));
  mirror = await startRegistry({
    auth: "token",
    anonymous: "none",
    users: [{ username: ROBOT, password: ROBOT_PASSWORD, access: "all" }],
  });
  // `docker login` against a token server: an offline token request returns the refresh token
  // that config.json then keeps as `identitytoken`.
  const url = new URL(mirror.tokenServer?.realm ?? "");
  url.searchParams.set("service", mirror.tokenServer?.service ?? "");
  url.searchParams.set("offline_token", "true");
  const answer = await fetch(url, {
    headers: { authorization: `Basic ${Buffer.from(`${ROBOT}:${ROBOT_PASSWORD}`).toString("base64")}` },
  });
  mirrorIdentityToken = ((await answer.json()) as { refresh_token: string }).refresh_token;
}, 120_000);

afterEach(async () => {
  await Promise.all(hostiles.splice(0).map((hostile) => hostile.stop()));
  mirror.tokenServer?.resetRequests();
});

afterAll(async () => {
  await Promise.allSettled([mirror.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

describe("refresh and access tokens stay with their registry", () => {
  it("a hostile registry's own realm never receives the mirror's refresh token", async () => {
    // The staging registry holds its first challenge until the promoter has exchanged the
    // mirror's identity token, so that any refresh token kept from that exchange is at hand.
    const staging = await startHostile({ name: "staging", beforeFirstChallenge: mirrorRefreshed });
    staging.seed("staging/app", image);
    const dockerConfig = await writeDockerConfig("refresh-own-realm", {
      auths: {
        [mirror.host]: { identitytoken: mirrorIdentityToken },
        [staging.host]: { identitytoken: "staging-identity-token" },
      },
    });
    const manifest = await writeManifest(
      "refresh-own-realm",
      `${staging.host}/staging`,
      `${mirror.host}/prod`,
    );
    await runPromoter(["promote", "--manifest", manifest], {
      cwd: work,
      env: baseEnv({ DOCKER_CONFIG: dockerConfig }),
    });
    expect(staging.refreshTokens.length).toBeGreaterThan(0);
    for (const received of staging.refreshTokens) {
      expect(["staging-identity-token", ...staging.mintedRefreshTokens]).toContain(received);
    }
    expect(staging.refreshTokens).not.toContain(mirrorIdentityToken);
  });

  it("a hostile registry naming the mirror's realm gets no token minted with the mirror's credential", async () => {
    // A compromised staging registry answers 401 with the production mirror's realm, service
    // and a push scope on the production repository: whatever token the promoter fetches there
    // for staging's request is handed to staging.
    const staging = await startHostile({
      name: "staging",
      beforeFirstChallenge: mirrorRefreshed,
      challenge: (request) =>
        request.headers.authorization === undefined
          ? {
              realm: mirror.tokenServer?.realm ?? "",
              service: mirror.tokenServer?.service ?? "",
              scope: "repository:prod/app:pull,push",
            }
          : undefined,
    });
    staging.seed("prod/app", image);
    const dockerConfig = await writeDockerConfig("refresh-foreign-realm", {
      auths: {
        [mirror.host]: { identitytoken: mirrorIdentityToken },
        [staging.host]: { identitytoken: "staging-identity-token" },
      },
    });
    const manifest = await writeManifest(
      "refresh-foreign-realm",
      `${staging.host}/prod`,
      `${mirror.host}/prod`,
    );
    const run = await runPromoter(["promote", "--manifest", manifest], {
      cwd: work,
      env: baseEnv({ DOCKER_CONFIG: dockerConfig }),
    });
    expect(staging.authorizations.map((header) => jwtClaims(header)?.sub)).not.toContain(ROBOT);
    // Staging's own identity token was offered to the realm it named, and refused there.
    expectClear(run, 1, /token endpoint refused/);
  });

  it("a hostile registry naming the mirror's realm is never handed a token cached for the mirror", async () => {
    // The same user name at two registries (oauth2accesstoken, _json_key, AWS, a robot) from one
    // source. Staging serves the planning with tokens of its own realm, then switches its
    // challenge to the mirror's realm, service and scope: the later requests of the copy must
    // not carry the token the promoter cached for reading the mirror.
    const mirrorRealm = {
      realm: mirror.tokenServer?.realm ?? "",
      service: mirror.tokenServer?.service ?? "",
      scope: "repository:cached/app:pull",
    };
    const staging = await startHostile({
      name: "staging",
      challenge: (request, own) => {
        const authorization = request.headers.authorization;
        if (authorization === undefined) return own;
        if (jwtClaims(authorization) !== undefined) return undefined; // a token of the mirror: take it
        return request.path.includes("/manifests/sha256-") ? mirrorRealm : undefined;
      },
    });
    staging.seed("cached/app", image);
    const manifest = await writeManifest(
      "cached-foreign-realm",
      `${staging.host}/cached`,
      `${mirror.host}/cached`,
    );
    await runPromoter(["promote", "--manifest", manifest, "--confirm"], {
      cwd: work,
      env: baseEnv({
        PROMOTER_REGISTRY_AUTH: JSON.stringify({
          auths: {
            [mirror.host]: { username: ROBOT, password: ROBOT_PASSWORD },
            [staging.host]: { username: ROBOT, password: "staging-password" },
          },
        }),
      }),
    });
    // The attack got as far as switching the realm (the promoter fetched a token there for it).
    expect(staging.server.requestsTo(/\/manifests\/sha256-/).length).toBeGreaterThan(0);
    expect(staging.authorizations.map((header) => jwtClaims(header)?.sub)).not.toContain(ROBOT);
  });

  it("a token request redirected to another origin does not carry its refresh token there", async () => {
    const collector = await startHostile({ name: "collector" });
    // Staging's realm (or whoever answers for it) sends the refresh-token POST on elsewhere
    // with a 307, which keeps method and body.
    const staging = await startHostile({
      name: "staging",
      answerTokenRequest: (request, response) => {
        if (request.method !== "POST") return false;
        response.writeHead(307, { location: collector.realm, "content-length": 0 });
        response.end();
        return true;
      },
    });
    staging.seed("staging/app", image);
    const dockerConfig = await writeDockerConfig("redirected-token", {
      auths: { [staging.host]: { identitytoken: "staging-identity-token" } },
    });
    const manifest = await writeManifest(
      "redirected-token",
      `${staging.host}/staging`,
      `${mirror.host}/prod`,
    );
    const run = await runPromoter(["promote", "--manifest", manifest], {
      cwd: work,
      env: baseEnv({
        DOCKER_CONFIG: dockerConfig,
        [registryAuthVariable(mirror.host)]: `${ROBOT}:${ROBOT_PASSWORD}`,
      }),
    });
    expect(collector.refreshTokens).toEqual([]);
    expect(collector.server.requests).toEqual([]);
    expectClear(run, 1, /refusing to send the body of POST .* on to another origin/);
  });
});

describe("token responses", () => {
  for (const [what, token, message] of [
    [
      "a header break",
      "staging-token\r\nX-Injected: 1",
      /token endpoint's token has characters other than printable ASCII/,
    ],
    ["a megabyte", "t".repeat(1000 * 1000), /token endpoint's token is longer than 65536 characters/],
  ] as const) {
    it(`a token with ${what} stops that registry with one clear line`, async () => {
      const staging = await startHostile({
        name: "staging",
        answerTokenRequest: (_request, response) => {
          const body = JSON.stringify({ token, expires_in: 300 });
          response.writeHead(200, {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
          });
          response.end(body);
          return true;
        },
      });
      staging.seed("staging/app", image);
      const manifest = await writeManifest("odd-token", `${staging.host}/staging`, `${mirror.host}/prod`);
      const run = await runPromoter(["promote", "--manifest", manifest], {
        cwd: work,
        env: baseEnv({ [registryAuthVariable(mirror.host)]: `${ROBOT}:${ROBOT_PASSWORD}` }),
      });
      expectClear(run, 1, message);
      expect(staging.authorizations.filter((header) => header.startsWith("Bearer staging"))).toEqual([]);
    });
  }
});

describe("look-alike hosts", () => {
  // The attacker's registry is 127.0.0.1:PORT; the credential belongs to a host whose name
  // differs from it only where the old variable spelling put "_" for ".", "-" and ":".
  for (const [what, victimOf, outcome] of [
    // The look-alike is simply anonymous.
    ["dashes for dots", (port: number) => `127-0-0-1:${port}`, { status: 0 }],
    // The victim's variable is the look-alike's old-style name: refused for it, by name.
    [
      "a dot for the port's colon",
      (port: number) => `127.0.0.1.${port}`,
      {
        status: 1,
        message:
          /not using \$PROMOTER_AUTH_127_0_0_1_\d+ for 127\.0\.0\.1:\d+: that variable is 127\.0\.0\.1\.\d+'s/,
      },
    ],
  ] as const) {
    it(`do not share PROMOTER_AUTH_ variables (${what})`, async () => {
      const lookAlike = await startHostile({ name: "look-alike" });
      lookAlike.seed("staging/app", image);
      const victim = victimOf(lookAlike.server.port);
      const password = `Victim-pw-${lookAlike.server.port}`;
      const manifest = await writeManifest(
        `look-alike-${lookAlike.server.port}`,
        `${lookAlike.host}/staging`,
        `${mirror.host}/prod`,
      );
      // The operator set the variable the documentation names for the victim host.
      const run = await runPromoter(["promote", "--manifest", manifest], {
        cwd: work,
        env: baseEnv({
          [registryAuthVariable(victim)]: `victim:${password}`,
          [registryAuthVariable(mirror.host)]: `${ROBOT}:${ROBOT_PASSWORD}`,
        }),
      });
      const seen = [...lookAlike.realmAuthorizations, ...lookAlike.authorizations].map((header) =>
        Buffer.from(header.replace(/^Basic /, ""), "base64").toString("utf8"),
      );
      expect(seen.join("\n")).not.toContain(password);
      expect(`${run.stdout}${run.stderr}`).not.toContain(password);
      if ("message" in outcome) expectClear(run, outcome.status, outcome.message);
      else expect(run.status, run.stderr).toBe(outcome.status);
    });
  }

  it("an old-style variable is refused with one line naming the new one", async () => {
    const legacy = `PROMOTER_AUTH_${mirror.host.replace(/[^A-Za-z0-9]/g, "_")}`;
    expect(legacy).not.toBe(registryAuthVariable(mirror.host));
    const staging = await startHostile({ name: "staging" });
    staging.seed("staging/app", image);
    const manifest = await writeManifest("legacy-variable", `${staging.host}/staging`, `${mirror.host}/prod`);
    mirror.tokenServer?.resetRequests();
    const run = await runPromoter(["promote", "--manifest", manifest], {
      cwd: work,
      env: baseEnv({ [legacy]: `${ROBOT}:${ROBOT_PASSWORD}` }),
    });
    expectClear(run, 1, new RegExp(`\\$${legacy} .*\\$${registryAuthVariable(mirror.host)}`));
    // Nothing was sent with it.
    expect(mirror.tokenServer?.requests.filter((request) => request.grantType !== "anonymous")).toEqual([]);
  });
});

describe("credential helpers", () => {
  it("get a minimal environment: no promoter secrets, signing keys or CI tokens", async () => {
    const bin = path.join(work, "helper-bin");
    await mkdir(bin, { recursive: true });
    const { dump } = await writeEnvironmentDumpingHelper(bin, "dump", {
      username: ROBOT,
      secret: ROBOT_PASSWORD,
    });
    const dockerConfig = await writeDockerConfig("helper-env", { credHelpers: { [mirror.host]: "dump" } });
    const secrets = {
      PROMOTER_SIGN_KEY: "-----BEGIN EC PRIVATE KEY-----Sign-key-9f8e7d",
      PROMOTER_SIGN_KEY_PASSWORD: "Sign-pw-6c5b4a",
      PROMOTER_REGISTRY_AUTH: JSON.stringify({ auths: { "other.example": { auth: "T3RoZXItcHctM2Qy" } } }),
      [registryAuthVariable("other.example")]: "other:Other-pw-3d2c1b",
      GITHUB_TOKEN: "ghs_Github-token-0a1b2c",
      SIGSTORE_ID_TOKEN: "Sigstore-oidc-4e5f6a",
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: "Actions-oidc-7b8c9d",
    };
    const manifest = await writeManifest("helper-env", `${mirror.host}/prod`, `${mirror.host}/copy`);
    const run = await runPromoter(["promote", "--manifest", manifest], {
      cwd: work,
      env: baseEnv({
        ...secrets,
        PATH: `${bin}${path.delimiter}${process.env.PATH ?? "/usr/bin:/bin"}`,
        DOCKER_CONFIG: dockerConfig,
        LANG: "C.UTF-8",
        HTTPS_PROXY: "http://127.0.0.1:9",
        NO_PROXY: "127.0.0.1",
        XDG_CONFIG_HOME: path.join(work, "xdg"),
        AWS_REGION: "eu-west-1",
      }),
    });
    const environment = await readFile(dump, "utf8");
    for (const [name, value] of Object.entries(secrets)) {
      expect(environment, name).not.toContain(value);
      expect(environment).not.toMatch(new RegExp(`^${name}=`, "m"));
    }
    // What a helper legitimately needs is still there.
    for (const name of [
      "PATH",
      "HOME",
      "DOCKER_CONFIG",
      "LANG",
      "HTTPS_PROXY",
      "NO_PROXY",
      "XDG_CONFIG_HOME",
      "AWS_REGION",
    ]) {
      expect(environment).toMatch(new RegExp(`^${name}=`, "m"));
    }
    // The helper answered: named only where the run says which source the credential came from.
    expect(run.stderr).toContain("from docker-credential-dump (");
    expect(run.stderr).not.toMatch(/(?:warn|error)[^\n]*docker-credential-dump/);
  });
});
