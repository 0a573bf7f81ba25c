/**
 * Support for the hostile tests of which registries a manifest may name and who owns a
 * destination repository (test/hostile/registry-policy.test.ts, project-ownership.test.ts):
 * `promoter` run as a user runs it (a child process of bin/promoter.js), a git repository holding
 * a thin-manifest tree, and the manifest texts those tests write.
 */
import { mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { runPromoter as runPromoterProcess, type PromoterRun } from "./promoter-process.js";
import { runTestGit } from "./test-git.js";

export { STACK_LINE, type PromoterRun } from "./promoter-process.js";

/**
 * Runs `promoter ARGS` in `cwd` with a minimal environment; never throws for a non-zero status.
 * Loopback registries are not allowed here: these tests are about what the policy refuses.
 */
export function runPromoter(
  cwd: string,
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
  timeoutMs = 60_000,
): Promise<PromoterRun> {
  return runPromoterProcess(args, { cwd, env, timeoutMs, allowLoopbackRegistries: false });
}

/** Writes `files` (relative path -> text) below `root`, creating folders. */
export async function writeTree(root: string, files: Readonly<Record<string, string>>): Promise<void> {
  for (const [relative, text] of Object.entries(files)) {
    const file = path.join(root, ...relative.split("/"));
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text);
  }
}

/** A git command in `repo` with a fixed identity and no system or user configuration. */
export function git(repo: string, ...args: string[]): string {
  return runTestGit({ cwd: repo, home: repo }, ...args);
}

/** `git init` on branch main and one commit of everything in `repo`. */
export function commitAll(repo: string, message: string, init = false): void {
  if (init) git(repo, "init", "-q", "-b", "main");
  git(repo, "add", "-A");
  git(repo, "commit", "-q", "-m", message);
}

/** A thin manifest's registries file: the source first, then the destinations. */
export function registriesYaml(source: string, destinations: readonly string[]): string {
  return [
    "registries:",
    `- name: ${source}`,
    "  src: true",
    ...destinations.map((destination) => `- name: ${destination}`),
    "",
  ].join("\n");
}

/** An images file: one entry per image with one digest and its tags. */
export function imagesYaml(
  images: readonly { readonly name: string; readonly digest: string; readonly tags: readonly string[] }[],
): string {
  return images
    .map(
      (image) =>
        `- name: ${image.name}\n  dmap:\n    "${image.digest}": [${image.tags.map((tag) => `"${tag}"`).join(", ")}]\n`,
    )
    .join("");
}
