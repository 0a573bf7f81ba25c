/**
 * What a hostile pull request can put into a checkout to take over the `git` the promoter runs:
 * a git repository hidden in the manifest folder (its `config` names a command git runs, or its
 * replace refs swap the base commit), a `.git` file pointing at such a repository, and a `git`
 * program on PATH that records the environment and arguments it was given (what any helper git
 * starts would see).
 */
import { execFileSync } from "node:child_process";
import { chmod, cp, mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";

/** Runs the real git for the test itself (setting up repositories), never with the user's config. */
export function gitIn(directory: string, home: string, ...args: string[]): string {
  return execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", ...args], {
    cwd: directory,
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", GIT_CONFIG_NOSYSTEM: "1", HOME: home },
  }).trim();
}

/**
 * The configuration of a repository that runs `command` with `sh` as soon as git misses an
 * object: a partial clone whose promisor remote fetches through `remote.origin.uploadpack`.
 * `core.worktree = .` makes the folder its own work tree, so `git rev-parse --show-toplevel`
 * started inside it answers the folder itself and everything after runs there too.
 */
function promisorConfig(command: string): string {
  // Double quotes: `;` and `#` start comments in git's config syntax.
  const quoted = `"${command.replace(/\\/g, "\\\\").replace(/"/g, '\\"')} #"`;
  return [
    "[core]",
    "\trepositoryformatversion = 1",
    "\tbare = false",
    "\tworktree = .",
    "[extensions]",
    "\tpartialClone = origin",
    '[remote "origin"]',
    "\turl = /nonexistent/promisor",
    "\tpromisor = true",
    `\tuploadpack = ${quoted}`,
    "[core]",
    `\tfsmonitor = ${quoted}`,
    `\tsshCommand = ${quoted}`,
    "",
  ].join("\n");
}

/** The shell command the planted repositories run: proof of execution and of what it could read. */
export function markerCommand(marker: string): string {
  return `id > '${marker}'; env | grep -E '^(PROMOTER|AWS|GITHUB_TOKEN)' >> '${marker}'`;
}

/**
 * Makes `folder` a git repository as git's discovery sees one (HEAD, objects/, refs/, config) with
 * files a pull request can commit (git tracks no empty folders, so each holds a file).
 */
export async function plantCommandRepository(folder: string, marker: string): Promise<void> {
  await mkdir(path.join(folder, "objects", "info"), { recursive: true });
  await mkdir(path.join(folder, "refs", "heads"), { recursive: true });
  await mkdir(path.join(folder, "hooks"), { recursive: true });
  await writeFile(path.join(folder, "HEAD"), "ref: refs/heads/main\n");
  await writeFile(path.join(folder, "config"), promisorConfig(markerCommand(marker)));
  await writeFile(path.join(folder, "objects", "info", "keep"), "");
  await writeFile(path.join(folder, "refs", "heads", "keep"), "");
  for (const hook of ["post-checkout", "reference-transaction", "pre-auto-gc"]) {
    await writeFile(path.join(folder, "hooks", hook), `#!/bin/sh\n${markerCommand(marker)}\n`);
    await chmod(path.join(folder, "hooks", hook), 0o755);
  }
}

/** A git directory elsewhere with the same hostile config, and a `.git` file in `folder` naming it. */
export async function plantGitFilePointer(
  folder: string,
  gitDirectory: string,
  marker: string,
): Promise<void> {
  await mkdir(path.join(gitDirectory, "objects", "info"), { recursive: true });
  await mkdir(path.join(gitDirectory, "refs", "heads"), { recursive: true });
  await writeFile(path.join(gitDirectory, "HEAD"), "ref: refs/heads/main\n");
  await writeFile(path.join(gitDirectory, "config"), promisorConfig(markerCommand(marker)));
  await writeFile(path.join(folder, ".git"), `gitdir: ${gitDirectory}\n`);
}

/**
 * Makes `folder` (a thin-manifest tree of the repository at `repository`) a git repository that
 * holds every object of the real one plus a forged commit whose tree is the folder's `manifests/`
 * and `images/` as they are now, and `refs/replace/<base>` pointing at it: read through this
 * repository, the base revision says what the pull request says, so nothing looks changed.
 */
export async function plantReplacedBase(
  repository: string,
  home: string,
  folder: string,
  base: string,
): Promise<string> {
  const relative = path.relative(repository, folder);
  const entries = gitIn(repository, home, "ls-tree", `HEAD:${relative}`)
    .split("\n")
    .filter((line) => /\t(manifests|images)$/.test(line));
  const tree = execFileSync("git", ["mktree"], {
    cwd: repository,
    input: `${entries.join("\n")}\n`,
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", GIT_CONFIG_NOSYSTEM: "1", HOME: home },
  }).trim();
  const forged = gitIn(repository, home, "commit-tree", tree, "-m", "forged base");
  await cp(path.join(repository, ".git", "objects"), path.join(folder, "objects"), { recursive: true });
  await mkdir(path.join(folder, "refs", "replace"), { recursive: true });
  await mkdir(path.join(folder, "refs", "heads"), { recursive: true });
  await writeFile(path.join(folder, "refs", "replace", base), `${forged}\n`);
  await writeFile(path.join(folder, "refs", "heads", "main"), `${base}\n`);
  await writeFile(path.join(folder, "HEAD"), "ref: refs/heads/main\n");
  await writeFile(
    path.join(folder, "config"),
    "[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tworktree = .\n",
  );
  return forged;
}

/**
 * A `git` program for the front of PATH: appends its environment and arguments to `log` (one
 * JSON line per run), then runs the real git. What it records is what any program git starts
 * (a hook, a helper, an editor) would be able to read.
 */
export async function writeGitSpy(binDirectory: string, log: string): Promise<void> {
  await mkdir(binDirectory, { recursive: true });
  const realGit = execFileSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).trim();
  const program = [
    `#!${process.execPath}`,
    '"use strict";',
    'const { appendFileSync } = require("node:fs");',
    'const { spawnSync } = require("node:child_process");',
    `appendFileSync(${JSON.stringify(log)}, JSON.stringify({ args: process.argv.slice(2), env: process.env }) + "\\n");`,
    `const result = spawnSync(${JSON.stringify(realGit)}, process.argv.slice(2), { stdio: "inherit" });`,
    "process.exitCode = result.status === null ? 1 : result.status;",
    "",
  ].join("\n");
  await writeFile(path.join(binDirectory, "git"), program);
  await chmod(path.join(binDirectory, "git"), 0o755);
}
