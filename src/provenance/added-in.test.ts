import { existsSync } from "node:fs";
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runTestGit } from "../../test/support/test-git.js";
import { MemoryLogger } from "../log.js";
import { addedInCommits, parseBlamePorcelain, parseCommitAuthors } from "./added-in.js";

/** Which commit wrote each manifest line: one `git blame` per file, in a real repository. */

const K8SIO = "/work/shared/k8sio";
let dir: string;
let home: string;

function git(who: string, ...args: string[]): string {
  return runTestGit({ cwd: dir, home, who }, ...args).trim();
}

async function write(file: string, text: string): Promise<string> {
  const full = path.join(dir, file);
  await mkdir(path.dirname(full), { recursive: true });
  await writeFile(full, text);
  return full;
}

/** A git program that logs each command's arguments, then runs git. */
async function loggingGit(): Promise<{ program: string; calls: () => Promise<string[]> }> {
  const log = path.join(home, "git-calls.log");
  const program = path.join(home, "git-logging");
  await writeFile(program, `#!/bin/sh\necho "$*" >> '${log}'\nexec git "$@"\n`);
  await chmod(program, 0o755);
  return {
    program,
    calls: async () => (existsSync(log) ? (await readFile(log, "utf8")).split("\n").filter(Boolean) : []),
  };
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "added-in-"));
  home = await mkdtemp(path.join(tmpdir(), "added-in-home-"));
  git("Alice", "init", "-q", "-b", "main");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(home, { recursive: true, force: true });
});

describe("addedInCommits", () => {
  it("names the commit that last wrote each line, with one blame per file", async () => {
    const a = await write("images/a/images.yaml", "- name: a\n  dmap:\n    one: [v1]\n    two: [v2]\n");
    const b = await write("images/b/images.yaml", "- name: b\n  dmap:\n    three: [v3]\n");
    git("Alice", "add", "-A");
    git("Alice", "commit", "-q", "-m", "a and b");
    const alice = git("Alice", "rev-parse", "HEAD");
    await write("images/a/images.yaml", "- name: a\n  dmap:\n    one: [v1]\n    two: [v2, latest]\n");
    git("Bob", "commit", "-q", "-am", "tag latest");
    const bob = git("Bob", "rev-parse", "HEAD");
    // Not committed yet: the work tree's line 5 has no commit.
    await write("images/b/images.yaml", "- name: b\n  dmap:\n    three: [v3]\n    four: [v4]\n");
    const outside = path.join(home, "elsewhere.yaml");

    const git2 = await loggingGit();
    const logger = new MemoryLogger();
    const found = await addedInCommits(
      dir,
      [
        { file: a, line: 3 },
        { file: a, line: 4 },
        { file: b, line: 3 },
        { file: b, line: 4 },
        { file: outside, line: 1 },
      ],
      { logger, gitProgram: git2.program },
    );
    expect(found.get({ file: a, line: 3 })).toEqual({
      sha: alice,
      author: "Alice <alice@example.com>",
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) as unknown,
      subject: "a and b",
    });
    expect(found.get({ file: a, line: 4 })).toMatchObject({ sha: bob, subject: "tag latest" });
    expect(found.get({ file: b, line: 3 })?.sha).toBe(alice);
    expect(found.get({ file: b, line: 4 })).toBeUndefined();
    expect(found.get({ file: outside, line: 1 })).toBeUndefined();
    expect(found.size).toBe(3);
    const blames = (await git2.calls()).filter((call) => call.includes(" blame "));
    expect(blames).toHaveLength(2);
    expect(blames.find((call) => call.endsWith("images/a/images.yaml"))).toContain("-L 3,4");
    expect(logger.lines).toEqual([]);
  });

  it("names each commit's own author, not the one the work tree's .mailmap substitutes", async () => {
    const file = await write("images/a/images.yaml", "- name: a\n  dmap:\n    one: [v1]\n");
    git("Alice", "add", "-A");
    git("Alice", "commit", "-q", "-m", "promote a");
    const alice = git("Alice", "rev-parse", "HEAD");
    await write("images/b/images.yaml", "- name: b\n  dmap:\n    two: [v2]\n");
    git("Bob", "add", "-A");
    git("Bob", "commit", "-q", "-m", "promote b");
    const bob = git("Bob", "rev-parse", "HEAD");
    // Another change maps both authors to one name, as a pull request's author can; and the user's
    // configuration asks git to apply mailmaps (log.mailmap) for good measure.
    await write(
      ".mailmap",
      "Release Managers <release@example.com> <alice@example.com>\nRelease Managers <release@example.com> <bob@example.com>\n",
    );
    git("Mallory", "add", ".mailmap");
    git("Mallory", "commit", "-q", "-m", "docs: contributors");
    git("Mallory", "config", "log.mailmap", "true");
    const other = path.join(dir, "images/b/images.yaml");
    // Blame itself applies the .mailmap: the reason it cannot be asked for the author.
    expect(git("Alice", "blame", "--porcelain", "--", "images/a/images.yaml")).toContain(
      "author Release Managers",
    );

    const found = await addedInCommits(dir, [
      { file, line: 3 },
      { file: other, line: 3 },
    ]);
    expect(found.get({ file, line: 3 })).toMatchObject({
      sha: alice,
      author: "Alice <alice@example.com>",
      subject: "promote a",
    });
    expect(found.get({ file: other, line: 3 })).toMatchObject({ sha: bob, author: "Bob <bob@example.com>" });
  });

  it("reads git log's id and author records, skipping what is not one", () => {
    const a = "a".repeat(40);
    const b = "b".repeat(64);
    const output = `${a}\0Alice <alice@example.com>\0\n${b}\0Bob <b@example.com>\0\nnot-an-id\0Eve\0\n`;
    expect([...parseCommitAuthors(output)]).toEqual([
      [a, "Alice <alice@example.com>"],
      [b, "Bob <b@example.com>"],
    ]);
    expect(parseCommitAuthors("")).toEqual(new Map());
    // A NUL inside a name (a hand-made commit object) cannot hand its text to another commit.
    const forged = `${a}\0Mallory\0${b}\0Release Managers\0\n${b}\0Bob <b@example.com>\0\n`;
    expect([...parseCommitAuthors(forged)]).toEqual([[b, "Bob <b@example.com>"]]);
    const forgedLast = `${b}\0Bob <b@example.com>\0\n${a}\0Mallory\0${b}\0Release Managers\0\n`;
    expect(parseCommitAuthors(forgedLast).get(b)).toBe("Bob <b@example.com>");
  });

  it("a shallow clone's boundary commit is not named for lines older than the clone", async () => {
    const file = "images/a/images.yaml";
    await write(file, "- name: a\n  dmap:\n    one: [v1]\n");
    git("Alice", "add", "-A");
    git("Alice", "commit", "-q", "-m", "one");
    await write(file, "- name: a\n  dmap:\n    one: [v1]\n    two: [v2]\n");
    git("Bob", "commit", "-q", "-am", "two");
    await write(file, "- name: a\n  dmap:\n    one: [v1]\n    two: [v2]\n    three: [v3]\n");
    git("Carol", "commit", "-q", "-am", "three");
    const carol = git("Carol", "rev-parse", "HEAD");
    const clone = path.join(home, "shallow");
    runTestGit({ cwd: home, home }, "clone", "-q", "--depth", "2", `file://${dir}`, clone);

    const logger = new MemoryLogger();
    const inClone = path.join(clone, file);
    const found = await addedInCommits(
      clone,
      [3, 4, 5].map((line) => ({ file: inClone, line })),
      { logger },
    );
    // Carol's line is inside the fetched history; Alice's and Bob's would be blamed on the boundary.
    expect(found.get({ file: inClone, line: 5 })?.sha).toBe(carol);
    expect(found.get({ file: inClone, line: 3 })).toBeUndefined();
    expect(found.get({ file: inClone, line: 4 })).toBeUndefined();
    expect(logger.lines.map((line) => line.message)).toEqual([
      expect.stringContaining("shallow clone: 2 manifest lines are older than its history"),
    ]);
  });

  it("a file git cannot blame is a warning; the other files are still blamed", async () => {
    const kept = await write("images/a/images.yaml", "- name: a\n");
    git("Alice", "add", "-A");
    git("Alice", "commit", "-q", "-m", "a");
    const untracked = await write("images/b/images.yaml", "- name: b\n");
    const logger = new MemoryLogger();
    const found = await addedInCommits(
      dir,
      [
        { file: untracked, line: 1 },
        { file: kept, line: 1 },
      ],
      { logger },
    );
    expect(found.get({ file: kept, line: 1 })).toBeDefined();
    expect(found.get({ file: untracked, line: 1 })).toBeUndefined();
    expect(logger.lines.map((line) => line.message)).toEqual([
      expect.stringMatching(
        /^cannot tell which commit added the lines of images\/b\/images\.yaml: git blame failed/,
      ),
    ]);
  });

  it("reads git's porcelain output: repeated commits, groups and boundaries", () => {
    const sha = "a".repeat(40);
    const other = "b".repeat(40);
    const output = [
      `${sha} 1 1 2`,
      "author Alice",
      "author-mail <alice@example.com>",
      "committer-time 1700000000",
      "summary first",
      "boundary",
      "filename f",
      "\tline one",
      `${sha} 2 2`,
      "\tline two",
      `${other} 3 3 1`,
      "author Bob",
      "summary second",
      "filename f",
      "\tsummary looks like a field but is content",
    ].join("\n");
    const parsed = parseBlamePorcelain(output);
    expect([...parsed.lines]).toEqual([
      [1, sha],
      [2, sha],
      [3, other],
    ]);
    // Blame's author and author-mail are the .mailmap's names: not read (git log's are).
    expect(parsed.commits.get(sha)).toEqual({
      time: 1700000000,
      summary: "first",
      boundary: true,
    });
    expect(parsed.commits.get(other)?.summary).toBe("second");
  });
});

async function yamlFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { withFileTypes: true, recursive: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith(".yaml"))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

describe.skipIf(!existsSync(K8SIO))(
  `addedInCommits on the k8s.io tree (${K8SIO}; skipped when it is absent)`,
  () => {
    it("blames every digest line of the real tree in a few seconds", async () => {
      await cp(K8SIO, dir, { recursive: true });
      git("Alice", "add", "-A");
      git("Alice", "commit", "-q", "-m", "k8s.io at 576d58a4");
      const head = git("Alice", "rev-parse", "HEAD");
      const positions: { file: string; line: number }[] = [];
      for (const file of await yamlFiles(dir)) {
        const lines = (await readFile(file, "utf8")).split("\n");
        lines.forEach((text, index) => {
          if (/sha256:[0-9a-f]{64}/.test(text)) positions.push({ file, line: index + 1 });
        });
      }
      expect(positions.length).toBeGreaterThan(15_000);

      const started = performance.now();
      const found = await addedInCommits(dir, positions);
      const seconds = (performance.now() - started) / 1000;
      expect(found.size).toBe(positions.length);
      expect(positions.every((position) => found.get(position)?.sha === head)).toBe(true);
      // One blame per file (152 files, ~52,000 digest lines) costs git about 2.5 s of CPU; it took
      // 6 to 11 s on two cores under a load of 13 to 16. One blame per line would take many minutes.
      expect(seconds).toBeLessThan(30);
    });
  },
);
