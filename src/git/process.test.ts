import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GitCommandError, gitEnvironment, gitGlobalOptions, runGitProcess } from "./process.js";

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "git-process-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("gitEnvironment", () => {
  const parent = {
    PATH: "/usr/bin",
    HOME: "/home/u",
    PROMOTER_SIGN_KEY: "key",
    PROMOTER_REGISTRY_AUTH: "{}",
    GIT_DIR: "/elsewhere",
    GIT_CONFIG_COUNT: "1",
    GIT_SSH_COMMAND: "evil",
    SSH_AUTH_SOCK: "/agent",
    HTTPS_PROXY: "http://proxy",
  };

  it("keeps programs and the user's config, never secrets or GIT_* overrides", () => {
    const local = gitEnvironment(parent, "none");
    expect(local.PATH).toBe("/usr/bin");
    expect(local.HOME).toBe("/home/u");
    for (const name of [
      "PROMOTER_SIGN_KEY",
      "PROMOTER_REGISTRY_AUTH",
      "GIT_DIR",
      "GIT_CONFIG_COUNT",
      "GIT_SSH_COMMAND",
    ]) {
      expect(local[name]).toBeUndefined();
    }
    expect(local.SSH_AUTH_SOCK).toBeUndefined();
    expect(local.GIT_NO_REPLACE_OBJECTS).toBe("1");
    expect(local.GIT_TERMINAL_PROMPT).toBe("0");
  });

  it("adds the SSH agent and proxies for clone and fetch only", () => {
    const remote = gitEnvironment(parent, "remote");
    expect(remote.SSH_AUTH_SOCK).toBe("/agent");
    expect(remote.HTTPS_PROXY).toBe("http://proxy");
    expect(remote.GIT_SSH_COMMAND).toBeUndefined();
    expect(remote.PROMOTER_SIGN_KEY).toBeUndefined();
  });
});

describe("gitGlobalOptions", () => {
  it("names the repository and closes transports for local reads", () => {
    const options = gitGlobalOptions({ repository: { gitDir: "/r/.git", workTree: "/r" }, network: "none" });
    expect(options).toEqual(
      expect.arrayContaining(["--no-replace-objects", "--git-dir=/r/.git", "--work-tree=/r"]),
    );
    expect(options).toContain("safe.bareRepository=explicit");
    expect(options).toContain("protocol.allow=never");
    expect(gitGlobalOptions({ network: "remote" })).not.toContain("protocol.allow=never");
    expect(gitGlobalOptions({ network: "remote" })).toContain("protocol.ext.allow=never");
  });
});

describe("runGitProcess", () => {
  it("never takes a folder that looks like a repository for one", async () => {
    // A bare-looking folder whose config would run a command on the first missing object.
    const planted = path.join(dir, "planted");
    const marker = path.join(dir, "ran");
    await mkdir(path.join(planted, "objects"), { recursive: true });
    await mkdir(path.join(planted, "refs"), { recursive: true });
    await writeFile(path.join(planted, "HEAD"), "ref: refs/heads/main\n");
    await writeFile(
      path.join(planted, "config"),
      `[core]\n\trepositoryformatversion = 1\n[extensions]\n\tpartialClone = origin\n[remote "origin"]\n\turl = /nowhere\n\tpromisor = true\n\tuploadpack = "touch ${marker} #"\n`,
    );
    const request = {
      args: ["rev-parse", "--verify", "--quiet", `${"a".repeat(40)}^{commit}`],
      cwd: planted,
      network: "none" as const,
      maxOutputBytes: 1024,
    };
    await expect(runGitProcess(request)).rejects.toThrow(GitCommandError);
    await expect(runGitProcess(request)).rejects.toThrow(/safe.bareRepository|bare repository/);
    expect(existsSync(marker)).toBe(false);
  });

  it("never fetches a missing object, even from a repository it was told to read", async () => {
    // Second line of defence: were a hostile repository ever named, its promisor remote
    // (a command in `uploadpack`) is not started, because no transport is allowed.
    const planted = path.join(dir, "named");
    const marker = path.join(dir, "fetched");
    await mkdir(path.join(planted, "objects"), { recursive: true });
    await mkdir(path.join(planted, "refs"), { recursive: true });
    await writeFile(path.join(planted, "HEAD"), "ref: refs/heads/main\n");
    await writeFile(
      path.join(planted, "config"),
      `[core]\n\trepositoryformatversion = 1\n\tbare = true\n[extensions]\n\tpartialClone = origin\n[remote "origin"]\n\turl = /nowhere\n\tpromisor = true\n\tuploadpack = "touch ${marker} #"\n`,
    );
    await expect(
      runGitProcess({
        args: ["rev-parse", "--verify", "--quiet", `${"a".repeat(40)}^{commit}`],
        repository: { gitDir: planted, workTree: dir },
        network: "none",
        maxOutputBytes: 1024,
      }),
    ).rejects.toThrow(GitCommandError);
    expect(existsSync(marker)).toBe(false);
  });

  it("reads a named repository and reports failures in one line", async () => {
    execFileSync("git", ["init", "-q", dir], { env: { PATH: process.env.PATH ?? "" } });
    const repository = { gitDir: path.join(dir, ".git"), workTree: dir };
    const top = await runGitProcess({
      args: ["rev-parse", "--show-toplevel"],
      repository,
      network: "none",
      maxOutputBytes: 4096,
    });
    expect(top.toString().trim()).toBe(dir);
    await expect(
      runGitProcess({ args: ["cat-file", "-t", "HEAD"], repository, network: "none", maxOutputBytes: 4096 }),
    ).rejects.toThrow(/^git cat-file failed \(exit 128\): /);
  });
});
