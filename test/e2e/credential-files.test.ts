import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { requireBuiltCli, runPromoter } from "../support/promoter-process.js";
import { SKOPEO_PROGRAM } from "../support/skopeo.js";
import { makeImage, pushTagsWithSkopeo } from "../support/test-images.js";

/**
 * Credentials where `skopeo login` and `podman login` put them (issue "Fails fast ...", item 5):
 * the search order of containers-auth.json(5), and a line saying which file was used. skopeo
 * itself writes the files here, so the test follows the real tool, not our reading of its docs.
 */

const USER = { username: "admin", password: "admin-password" };
let registry: TestRegistry;
let work: string;

/** `skopeo login` with exactly `env` (plus PATH): where it writes is what we must read. */
async function skopeoLogin(env: Record<string, string>): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = execFile(
      SKOPEO_PROGRAM,
      ["login", "--tls-verify=false", "-u", USER.username, "--password-stdin", registry.host],
      { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env }, timeout: 30_000 },
      (error) => {
        if (error) reject(new Error(`skopeo login failed: ${error.message}`));
        else resolve();
      },
    );
    child.stdin?.end(`${USER.password}\n`);
  });
}

function snapshot(env: Record<string, string>) {
  return runPromoter(["snapshot", registry.host, "--repository", "app"], { cwd: work, env, exactEnv: true });
}

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "credential-files-"));
  registry = await startRegistry({ auth: "basic" });
  const image = makeImage({ layers: 1, layerSize: 64, seed: "credential-files", mediaTypes: "oci" });
  await pushTagsWithSkopeo(work, registry.host, "app", [{ content: image, tag: "1.0" }], USER);
}, 120_000);

afterAll(async () => {
  await (registry as TestRegistry | undefined)?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("credential files written by skopeo login", () => {
  it("reads $XDG_RUNTIME_DIR/containers/auth.json, then $XDG_CONFIG_HOME's, and says which", async () => {
    const home = path.join(work, "home-xdg");
    const runtime = path.join(work, "run-xdg");
    await mkdir(home, { recursive: true });
    await mkdir(runtime, { recursive: true });
    await skopeoLogin({ HOME: home, XDG_RUNTIME_DIR: runtime });
    const written = path.join(runtime, "containers", "auth.json");
    expect(existsSync(written)).toBe(true);

    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, XDG_RUNTIME_DIR: runtime };
    const fromRuntime = await snapshot(env);
    expect(fromRuntime.stderr).toContain(`credentials for ${registry.host} from ${written}`);
    expect(fromRuntime.status).toBe(0);
    expect(fromRuntime.stdout).toContain("1.0");
    expect(fromRuntime.stderr).not.toContain(USER.password);

    // The same file under $XDG_CONFIG_HOME (podman's persistent place) is found too.
    const configHome = path.join(work, "config-home");
    await mkdir(path.join(configHome, "containers"), { recursive: true });
    await rename(written, path.join(configHome, "containers", "auth.json"));
    const fromConfig = await snapshot({ ...env, XDG_CONFIG_HOME: configHome });
    expect(fromConfig.status).toBe(0);
    expect(fromConfig.stderr).toContain(path.join(configHome, "containers", "auth.json"));
  });

  it("reads /run/containers/<uid>/auth.json, where skopeo login writes without XDG_RUNTIME_DIR", async (context) => {
    const uid = process.getuid?.() ?? 0;
    const file = `/run/containers/${uid}/auth.json`;
    if (existsSync(file)) {
      context.skip(`${file} already exists on this machine; not touching a real login`);
      return;
    }
    const home = path.join(work, "home-run");
    await mkdir(home, { recursive: true });
    try {
      await skopeoLogin({ HOME: home });
      expect(existsSync(file)).toBe(true);
      const run = await snapshot({ PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home });
      expect(run.stderr).toContain(`credentials for ${registry.host} from ${file}`);
      expect(run.status).toBe(0);
    } finally {
      await rm(file, { force: true });
    }
  });
});
