import { mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { runTestGit } from "./test-git.js";

/**
 * A manifests repository with the history a review leaves: someone starts it on `main`, a pull
 * request's author commits on a branch, and GitHub merges it with a merge commit ("Merge pull
 * request #N from OWNER/BRANCH"), each as a git user of their own. For the tests of what the
 * promotion records say about who approved what (the review facts).
 */
export class ManifestHistory {
  private constructor(
    readonly repo: string,
    private readonly home: string,
  ) {}

  /** A new repository in `dir` (and a git home beside it), its first commit by `who`. */
  static async start(
    dir: string,
    files: Readonly<Record<string, string>>,
    who = "Alice",
    message = "the manifests",
  ): Promise<{ history: ManifestHistory; base: string }> {
    const home = `${dir}-home`;
    await Promise.all([mkdir(dir, { recursive: true }), mkdir(home, { recursive: true })]);
    const history = new ManifestHistory(dir, home);
    history.git(who, "init", "-q", "-b", "main");
    const base = await history.commit(who, files, message, ["add", "-A"]);
    return { history, base };
  }

  /** Runs git as `who`; its output, trimmed. */
  git(who: string, ...args: string[]): string {
    return runTestGit({ cwd: this.repo, home: this.home, who }, ...args).trim();
  }

  /** Writes `files` and commits them as `who`; the commit's id. */
  async commit(
    who: string,
    files: Readonly<Record<string, string>>,
    message: string | readonly string[],
    stage: readonly string[] = ["add", "-A"],
  ): Promise<string> {
    for (const [file, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(this.repo, file)), { recursive: true });
      await writeFile(path.join(this.repo, file), text);
    }
    this.git(who, ...stage);
    const messages = typeof message === "string" ? [message] : message;
    this.git(who, "commit", "-q", ...messages.flatMap((paragraph) => ["-m", paragraph]));
    return this.git(who, "rev-parse", "HEAD");
  }

  /**
   * Pull request `number`: `author` makes `commits` on `branch` (from main), and GitHub merges it
   * into main with a merge commit. The branch's commits (its head last) and the merge commit.
   */
  async mergedPullRequest(options: {
    readonly number: number;
    readonly author: string;
    readonly branch: string;
    readonly commits: readonly {
      readonly files: Readonly<Record<string, string>>;
      readonly message: string | readonly string[];
    }[];
  }): Promise<{ commits: string[]; head: string; merge: string }> {
    const { author, branch } = options;
    this.git(author, "checkout", "-q", "-b", branch, "main");
    const commits: string[] = [];
    for (const commit of options.commits)
      commits.push(await this.commit(author, commit.files, commit.message));
    this.git("GitHub", "checkout", "-q", "main");
    this.git(
      "GitHub",
      "merge",
      "--no-ff",
      "-q",
      branch,
      "-m",
      `Merge pull request #${options.number} from ${author.toLowerCase()}/${branch}`,
    );
    return { commits, head: commits.at(-1) ?? "", merge: this.git("GitHub", "rev-parse", "HEAD") };
  }
}

/** A GitHub Actions run on a push to main whose event file is `event`, with the API at `apiUrl`. */
export function githubPushEnvironment(options: {
  readonly repository: string;
  readonly event: string;
  readonly token?: string;
  readonly apiUrl?: string;
}): Record<string, string> {
  return {
    GITHUB_ACTIONS: "true",
    GITHUB_REPOSITORY: options.repository,
    GITHUB_EVENT_NAME: "push",
    GITHUB_EVENT_PATH: options.event,
    ...(options.token === undefined ? {} : { GITHUB_TOKEN: options.token }),
    ...(options.apiUrl === undefined ? {} : { GITHUB_API_URL: options.apiUrl }),
  };
}
