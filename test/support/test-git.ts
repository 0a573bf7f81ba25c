import { execFileSync } from "node:child_process";

/**
 * git as a test's contributor runs it: a fixed identity, no system or user configuration (HOME
 * is a folder of the test's), and optionally a chosen date, because whoever commits chooses the
 * author and committer dates (the auditor's timing tests depend on that).
 */
export interface TestGitOptions {
  readonly cwd: string;
  /** HOME for git: a folder of the test's, so no user configuration applies. */
  readonly home: string;
  /** Author and committer name; the e-mail is derived from it. Default "Author". */
  readonly who?: string;
  /** Author and committer date. */
  readonly dated?: Date;
}

/** Runs git and returns its standard output as text. */
export function runTestGit(options: TestGitOptions, ...args: string[]): string {
  const who = options.who ?? "Author";
  const email = `${who.toLowerCase()}@example.com`;
  const date = options.dated?.toISOString();
  return execFileSync("git", args, {
    cwd: options.cwd,
    encoding: "utf8",
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: options.home,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_AUTHOR_NAME: who,
      GIT_AUTHOR_EMAIL: email,
      GIT_COMMITTER_NAME: who,
      GIT_COMMITTER_EMAIL: email,
      ...(date === undefined ? {} : { GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date }),
    },
  });
}
