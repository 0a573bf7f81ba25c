import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MemoryLogger } from "../log.js";
import {
  FAILED_CHECKS_BEFORE_ALERT,
  ManifestWatcher,
  type CheckOutcome,
  type LoadedState,
  type ManifestOrigin,
} from "./manifest-source.js";
import { redactGitUrl, gitUrlProblem, gitBranchProblem } from "./git-checkout.js";

const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;
const D3 = `sha256:${"3".repeat(64)}`;

const REGISTRIES = `registries:
- name: stage.example/staging-app
  src: true
- name: prod.example/images
- name: mirror.example/images
`;

function images(entries: Record<string, string[]>): string {
  const lines = ["- name: app", "  dmap:"];
  for (const [digest, tags] of Object.entries(entries))
    lines.push(`    "${digest}": ${JSON.stringify(tags)}`);
  return `${lines.join("\n")}\n`;
}

function writeThinTree(root: string, imagesText: string): void {
  mkdirSync(path.join(root, "manifests", "app"), { recursive: true });
  mkdirSync(path.join(root, "images", "app"), { recursive: true });
  writeFileSync(path.join(root, "manifests", "app", "promoter-manifest.yaml"), REGISTRIES);
  writeFileSync(path.join(root, "images", "app", "images.yaml"), imagesText);
}

/** Rewrites a file and moves its mtime, so a change within one clock tick is still seen. */
function rewrite(file: string, text: string, tick: number): void {
  writeFileSync(file, text);
  const time = new Date(Date.now() + tick * 1000);
  utimesSync(file, time, time);
}

describe("ManifestWatcher", () => {
  let directory: string;
  let states: LoadedState[];
  let broken: { message: string; details: Readonly<Record<string, unknown>> }[];
  let checked: CheckOutcome[];
  const watchers: ManifestWatcher[] = [];

  function watcher(origin: ManifestOrigin): ManifestWatcher {
    const created = new ManifestWatcher({
      origin,
      cwd: directory,
      logger: new MemoryLogger(),
      intervalMs: 20,
      onState: (loaded) => states.push(loaded),
      onBroken: (message, details) => broken.push({ message, details }),
      onChecked: (outcome) => checked.push(outcome),
    });
    watchers.push(created);
    return created;
  }

  const wanted = (loaded: LoadedState | undefined): string[] =>
    [...(loaded?.state.repositories.get("prod.example/images/app")?.digests.keys() ?? [])].sort();

  beforeEach(() => {
    directory = mkdtempSync(path.join(os.tmpdir(), "promoter-manifest-watch-"));
    states = [];
    broken = [];
    checked = [];
  });

  afterEach(async () => {
    for (const created of watchers.splice(0)) await created.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it("reloads a thin-manifest tree when a file changes, and only then", async () => {
    writeThinTree(path.join(directory, "tree"), images({ [D1]: ["1.0"] }));
    const subject = watcher({ kind: "thin-manifest-dir", directory: "tree" });
    await subject.loadInitial();
    expect(wanted(states[0])).toEqual([D1]);
    expect(await subject.check()).toBe("unchanged");
    rewrite(
      path.join(directory, "tree", "images", "app", "images.yaml"),
      images({ [D1]: ["1.0"], [D2]: [] }),
      1,
    );
    expect(await subject.check()).toBe("reloaded");
    expect(wanted(states[1])).toEqual([D1, D2]);
    expect(broken).toEqual([]);
  });

  it("keeps the last good state when a change breaks the manifests, and alerts once", async () => {
    writeThinTree(path.join(directory, "tree"), images({ [D1]: ["1.0"] }));
    const subject = watcher({ kind: "thin-manifest-dir", directory: "tree" });
    await subject.loadInitial();
    const imagesFile = path.join(directory, "tree", "images", "app", "images.yaml");
    rewrite(imagesFile, "- name: app\n  dmap: [unclosed\n", 1);
    expect(await subject.check()).toBe("broken");
    expect(await subject.check()).toBe("broken");
    expect(broken).toHaveLength(1);
    expect(broken[0]?.message).toMatch(/keeping the last good manifests/);
    expect(String(broken[0]?.details.error)).toMatch(/images\.yaml/);
    expect(states).toHaveLength(1);
    rewrite(imagesFile, images({ [D1]: ["1.0"], [D3]: ["3.0"] }), 2);
    expect(await subject.check()).toBe("reloaded");
    expect(wanted(states[1])).toEqual([D1, D3]);
  });

  it("tolerates errors the first load had, refuses new ones", async () => {
    const file = path.join(directory, "plain.yaml");
    const withError = `${REGISTRIES}images:\n- name: app\n  dmap:\n    "${D1}": ["1.0"]\n    "sha256:abc": ["bad"]\n`;
    writeFileSync(file, withError);
    const subject = watcher({ kind: "manifest", file: "plain.yaml" });
    const initial = await subject.loadInitial();
    expect(initial.errors.map((finding) => finding.rule)).toEqual(["invalid-digest"]);
    rewrite(file, `${withError}    "${D2}": ["2.0"]\n`, 1);
    expect(await subject.check()).toBe("reloaded");
    rewrite(file, `${withError}    "${D2}": ["2.0"]\n    "sha256:def": ["worse"]\n`, 2);
    expect(await subject.check()).toBe("broken");
    expect(String(broken[0]?.details.error)).toMatch(/sha256:def/);
    expect(wanted(states.at(-1))).toEqual([D1, D2]);
  });

  it("fails the first load when the manifests are missing", async () => {
    await expect(watcher({ kind: "thin-manifest-dir", directory: "absent" }).loadInitial()).rejects.toThrow(
      /absent/,
    );
  });

  it("clones a git repository, follows its branch, and refuses a broken commit", async () => {
    const origin = path.join(directory, "origin");
    const git = (...args: string[]): string =>
      execFileSync("git", args, {
        cwd: origin,
        env: {
          ...process.env,
          GIT_AUTHOR_NAME: "t",
          GIT_AUTHOR_EMAIL: "t@example.invalid",
          GIT_COMMITTER_NAME: "t",
          GIT_COMMITTER_EMAIL: "t@example.invalid",
        },
      }).toString();
    mkdirSync(origin);
    git("init", "--quiet", "--initial-branch", "release");
    writeThinTree(path.join(origin, "registry"), images({ [D1]: ["1.0"] }));
    git("add", ".");
    git("commit", "--quiet", "-m", "first");

    const subject = watcher({ kind: "git", url: `file://${origin}`, branch: "release", path: "registry" });
    await subject.loadInitial();
    expect(wanted(states[0])).toEqual([D1]);
    expect(await subject.check()).toBe("unchanged");

    writeFileSync(
      path.join(origin, "registry", "images", "app", "images.yaml"),
      images({ [D1]: ["1.0"], [D2]: ["2.0"] }),
    );
    git("commit", "--quiet", "-am", "second");
    expect(await subject.check()).toBe("reloaded");
    expect(wanted(states[1])).toEqual([D1, D2]);

    writeFileSync(path.join(origin, "registry", "images", "app", "images.yaml"), "{{{");
    git("commit", "--quiet", "-am", "broken");
    expect(await subject.check()).toBe("broken");
    expect(states).toHaveLength(2);
    expect(broken).toHaveLength(1);
  });

  /** A repository in `directory/origin` whose commits are dated `date` (epoch ms) when given. */
  function originRepository(): {
    origin: string;
    git: (date: number | undefined, ...args: string[]) => string;
  } {
    const origin = path.join(directory, "origin");
    mkdirSync(origin);
    const git = (date: number | undefined, ...args: string[]): string =>
      execFileSync("git", args, {
        cwd: origin,
        env: {
          ...process.env,
          GIT_AUTHOR_NAME: "t",
          GIT_AUTHOR_EMAIL: "t@example.invalid",
          GIT_COMMITTER_NAME: "t",
          GIT_COMMITTER_EMAIL: "t@example.invalid",
          ...(date === undefined ? {} : { GIT_COMMITTER_DATE: `@${Math.floor(date / 1000)} +0000` }),
        },
      }).toString();
    return { origin, git };
  }

  it("keeps the revisions of the branch: a merge superseded before the fetch is loaded from its own tree", async () => {
    const { origin, git } = originRepository();
    const imagesFile = path.join(origin, "registry", "images", "app", "images.yaml");
    git(undefined, "init", "--quiet", "--initial-branch", "main");
    writeThinTree(path.join(origin, "registry"), images({ [D1]: ["1.0"] }));
    git(undefined, "add", ".");
    git(undefined, "commit", "--quiet", "-m", "first");
    // The auditor's clock: it fetched at `clock`, and fetches again 30 s later.
    let clock = Date.now();
    const subject = new ManifestWatcher({
      origin: { kind: "git", url: `file://${origin}`, branch: "main", path: "registry" },
      cwd: directory,
      logger: new MemoryLogger(),
      intervalMs: 20,
      onState: (loaded) => states.push(loaded),
      onBroken: (message, details) => broken.push({ message, details }),
      now: () => clock,
    });
    watchers.push(subject);
    await subject.loadInitial();

    // Two merges, 10 s apart, before the auditor fetches: a promotion may run from the first.
    writeFileSync(imagesFile, images({ [D1]: ["1.0"], [D2]: ["2.0"] }));
    git(clock + 10_000, "commit", "--quiet", "-am", "second");
    writeFileSync(imagesFile, images({ [D1]: ["1.0"], [D3]: ["3.0"] }));
    git(clock + 20_000, "commit", "--quiet", "-am", "third");
    clock += 30_000;
    expect(await subject.check()).toBe("reloaded");
    expect(wanted(states.at(-1))).toEqual([D1, D3]);

    const around = await subject.statesAround(clock);
    expect(around.map(({ state }) => wanted({ state } as LoadedState))).toEqual([[D1, D3], [D1, D2], [D1]]);
    expect(around[0]?.until).toBeUndefined();
    expect(around[1]?.until).toBe(around[0]?.revision.since);
    expect(subject.lastCheck()).toMatchObject({ lastSuccessStartedAt: expect.any(Number) as number });
  });

  it("follows the branch, never a tag of the same name pushed by someone who cannot push to the branch", async () => {
    const { origin, git } = originRepository();
    const imagesFile = path.join(origin, "registry", "images", "app", "images.yaml");
    git(undefined, "init", "--quiet", "--initial-branch", "main");
    writeThinTree(path.join(origin, "registry"), images({ [D1]: ["1.0"] }));
    git(undefined, "add", ".");
    git(undefined, "commit", "--quiet", "-m", "reviewed");
    const subject = watcher({ kind: "git", url: `file://${origin}`, branch: "main", path: "registry" });
    await subject.loadInitial();

    // An unreviewed commit on a branch of its own, and a tag named like the reviewed branch.
    git(undefined, "checkout", "--quiet", "-b", "unreviewed");
    writeFileSync(imagesFile, images({ [D1]: ["1.0"], [D2]: ["rogue"] }));
    git(undefined, "commit", "--quiet", "-am", "rogue");
    git(undefined, "tag", "main");
    git(undefined, "checkout", "--quiet", "main");

    expect(await subject.check()).toBe("unchanged");
    expect(states.map((loaded) => wanted(loaded))).toEqual([[D1]]);
    const around = await subject.statesAround(Date.now());
    expect(around.map(({ state }) => wanted({ state } as LoadedState))).toEqual([[D1]]);
  });

  // A pull request merged by fast-forward or "rebase and merge" puts each of its commits on the
  // first-parent chain in one push: none but the last was ever the branch's state, nobody
  // reviewed them one by one, and no promotion ran from them. Its author chose their dates.
  for (const [dating, offset] of [
    ["dated by its author long before (a fast-forward)", -10 * 60_000],
    ["dated in the same second (a rebase on merge)", 15_000],
    ["dated in the future", 60 * 60_000],
  ] as const) {
    it(`never counts a commit that reached the branch with the one after it, ${dating}`, async () => {
      const { origin, git } = originRepository();
      const imagesFile = path.join(origin, "registry", "images", "app", "images.yaml");
      git(undefined, "init", "--quiet", "--initial-branch", "main");
      writeThinTree(path.join(origin, "registry"), images({ [D1]: ["1.0"] }));
      git(undefined, "add", ".");
      git(undefined, "commit", "--quiet", "-m", "reviewed and promoted");
      let clock = Date.now();
      const subject = new ManifestWatcher({
        origin: { kind: "git", url: `file://${origin}`, branch: "main", path: "registry" },
        cwd: directory,
        logger: new MemoryLogger(),
        intervalMs: 20,
        onState: (loaded) => states.push(loaded),
        onBroken: (message, details) => broken.push({ message, details }),
        now: () => clock,
      });
      watchers.push(subject);
      await subject.loadInitial();

      // The pull request: a commit adds a rogue digest, the next removes it; the reviewed diff
      // shows only the new tag.
      writeFileSync(imagesFile, images({ [D1]: ["1.0"], [D2]: ["rogue"] }));
      git(clock + offset, "commit", "--quiet", "-am", "add rogue");
      writeFileSync(imagesFile, images({ [D1]: ["1.0", "1.1"] }));
      git(clock + offset, "commit", "--quiet", "-am", "take it out again");
      clock += 30_000;
      expect(await subject.check()).toBe("reloaded");

      // A push of the rogue digest right after the merge (and for the hour after it).
      for (const at of [clock, clock + 30 * 60_000]) {
        const around = await subject.statesAround(at);
        expect(around.map(({ state }) => wanted({ state } as LoadedState))).toEqual([[D1], [D1]]);
      }
    });
  }

  it("alerts when checks keep failing", async () => {
    writeThinTree(path.join(directory, "tree"), images({ [D1]: ["1.0"] }));
    const subject = watcher({ kind: "thin-manifest-dir", directory: "tree" });
    await subject.loadInitial();
    rmSync(path.join(directory, "tree"), { recursive: true });
    subject.start();
    // Past the alert and a few failures more: one alert, not one per failure.
    const failures = FAILED_CHECKS_BEFORE_ALERT + 3;
    await vi.waitFor(() => {
      expect(checked.length).toBeGreaterThanOrEqual(failures);
    }, 10_000);
    expect(checked.slice(0, failures).map((outcome) => outcome.result)).toEqual(
      new Array<string>(failures).fill("failed"),
    );
    expect(broken.map((entry) => entry.message)).toEqual([
      "manifest checks keep failing; the desired state may be stale",
    ]);
  });
});

describe("git inputs", () => {
  it("refuses dangerous URLs and branch names, and redacts credentials", () => {
    expect(gitUrlProblem("--upload-pack=evil")).toMatch(/-/);
    expect(gitUrlProblem("ext::sh -c evil")).toMatch(/ext::/);
    expect(gitUrlProblem("https://github.com/kubernetes/k8s.io")).toBeUndefined();
    expect(gitBranchProblem("main")).toBeUndefined();
    expect(gitBranchProblem("-x")).toBeDefined();
    expect(gitBranchProblem("a..b")).toBeDefined();
    expect(redactGitUrl("https://user:ghp_secret@github.com/o/r")).toBe("https://***@github.com/o/r");
  });
});
