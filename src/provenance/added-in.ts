import { realpath } from "node:fs/promises";
import * as path from "node:path";
import { runBounded } from "../concurrency/index.js";
import { AbortedError, describeError } from "../errors.js";
import { escapeExcerpt } from "../excerpt.js";
import { locateRepository, runGit, type GitRepository } from "../gitops/index.js";
import { silentLogger, type Logger } from "../log.js";
import type { SourcePosition } from "../manifest/index.js";
import type { CommitRecord } from "./promotion-record.js";
import { recordText } from "./review-facts.js";

/**
 * Which commit wrote each manifest line a promoted digest stands on: `git blame --porcelain`,
 * once per file (the k8s.io tree: ~20,000 digests in 75 files, so 75 blames, not 20,000).
 * https://git-scm.com/docs/git-blame#_the_porcelain_format
 *
 * Blame names authors through the work tree's `.mailmap`, and has no switch to stop it
 * (https://git-scm.com/docs/git-blame#_mapping_authors): a `.mailmap` line in any pull request
 * would rename the author of every commit it blames. So the author is read from the blamed
 * commits themselves, with `git log --no-walk --no-mailmap` and `%an <%ae>` (the recorded name
 * and e-mail; `%aN`/`%aE` are the mapped ones, https://git-scm.com/docs/git-log#_pretty_formats).
 * The mailmap changes names and e-mails only, so blame's committer time and summary stay.
 */

/** Files blamed at once: blame is CPU-bound in git, and the promoter shares the machine. */
const BLAME_CONCURRENCY = 2;
/** More line ranges than this in one file: blame the whole file (one pass either way). */
const MAX_LINE_RANGES = 64;
/** Commits whose authors one `git log` reads (their ids go on standard input, 41 bytes each). */
const MAX_COMMITS_PER_LOG = 1000;

export interface AddedInCommits {
  /** The commit that last wrote the line, or undefined (not committed, outside the repository). */
  get(position: Pick<SourcePosition, "file" | "line">): CommitRecord | undefined;
  /** How many positions have a commit. */
  readonly size: number;
}

export interface AddedInOptions {
  readonly logger?: Logger;
  readonly signal?: AbortSignal;
  readonly gitProgram?: string;
}

class AddedInIndex implements AddedInCommits {
  /** Absolute file path (as the positions give it) -> line -> commit. */
  readonly byFile = new Map<string, Map<number, CommitRecord>>();

  get(position: Pick<SourcePosition, "file" | "line">): CommitRecord | undefined {
    return this.byFile.get(position.file)?.get(position.line);
  }

  get size(): number {
    let count = 0;
    for (const lines of this.byFile.values()) count += lines.size;
    return count;
  }
}

/** Sorted unique lines as `-L a,b` ranges of consecutive lines. */
function lineRanges(lines: readonly number[]): [number, number][] {
  const sorted = [...new Set(lines)]
    .filter((line) => Number.isSafeInteger(line) && line > 0)
    .sort((a, b) => a - b);
  const ranges: [number, number][] = [];
  for (const line of sorted) {
    const last = ranges.at(-1);
    if (last && line === last[1] + 1) last[1] = line;
    else ranges.push([line, line]);
  }
  return ranges;
}

/** `path` relative to the work tree, `/`-separated, or undefined when it is outside. */
async function inWorkTree(workTree: string, file: string): Promise<string | undefined> {
  const relative = (root: string, target: string) => {
    const inside = path.relative(root, target);
    return inside === "" || inside.startsWith("..") || path.isAbsolute(inside) ? undefined : inside;
  };
  const direct = relative(workTree, file);
  if (direct !== undefined) return direct.split(path.sep).join("/");
  try {
    // The positions may name the file through a symbolic link (/tmp on macOS, a linked checkout).
    const real = relative(await realpath(workTree), await realpath(file));
    return real?.split(path.sep).join("/");
  } catch {
    return undefined;
  }
}

const ZERO_SHA = /^0+$/;

/** Seconds since the epoch as RFC 3339 in UTC, without fractions. */
export function epochToRfc3339(seconds: number): string | undefined {
  if (!Number.isSafeInteger(seconds)) return undefined;
  const date = new Date(seconds * 1000);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** What a blame says of a commit that no .mailmap changes (its author is read apart). */
interface BlamedCommit {
  time?: number;
  summary?: string;
  boundary: boolean;
}

/**
 * Parses `git blame --porcelain`: a header `SHA ORIG FINAL [COUNT]` per group of lines, the
 * commit's fields the first time it appears, and each line's content after a tab. Returns final
 * line -> commit for the lines blamed.
 */
export function parseBlamePorcelain(output: string): {
  readonly lines: Map<number, string>;
  readonly commits: Map<string, BlamedCommit>;
} {
  const lines = new Map<number, string>();
  const commits = new Map<string, BlamedCommit>();
  let current: { sha: string; final: number; count: number } | undefined;
  for (const line of output.split("\n")) {
    if (line.startsWith("\t")) {
      // The content of the line `current` names; the next header follows.
      current = undefined;
      continue;
    }
    if (current === undefined) {
      const header = /^([0-9a-f]{40}|[0-9a-f]{64}) (\d+) (\d+)(?: (\d+))?$/.exec(line);
      if (!header) continue;
      const sha = header[1] ?? "";
      current = { sha, final: Number(header[3]), count: Number(header[4] ?? 1) };
      lines.set(current.final, sha);
      if (!commits.has(sha)) commits.set(sha, { boundary: false });
      continue;
    }
    const commit = commits.get(current.sha);
    if (!commit) continue;
    const space = line.indexOf(" ");
    const key = space < 0 ? line : line.slice(0, space);
    const value = space < 0 ? "" : line.slice(space + 1);
    if (key === "committer-time") commit.time = Number(value);
    else if (key === "summary") commit.summary = value;
    else if (key === "boundary") commit.boundary = true;
  }
  return { lines, commits };
}

/**
 * Parses `git log --format=%H%x00%an <%ae>%x00` output, one commit a line: commit id ->
 * `Name <e-mail>` as the commit records it. A line of any other shape is skipped, so that a name
 * holding a NUL (a hand-made commit object) cannot shift the fields and lend its text to the
 * next commit; a name cannot hold a line feed (it ends the commit's header line).
 */
export function parseCommitAuthors(output: string): Map<string, string> {
  const authors = new Map<string, string>();
  for (const line of output.split("\n")) {
    const record = /^([0-9a-f]{40}|[0-9a-f]{64})\0([^\0]*)\0$/.exec(line);
    if (record) authors.set(record[1] ?? "", record[2] ?? "");
  }
  return authors;
}

/**
 * The author each commit records (`%an <%ae>`, no mailmap), `MAX_COMMITS_PER_LOG` commits per
 * `git log`; a commit git does not print has none.
 */
async function commitAuthors(
  shas: readonly string[],
  gitOptions: Parameters<typeof runGit>[1],
): Promise<Map<string, string>> {
  const authors = new Map<string, string>();
  for (let start = 0; start < shas.length; start += MAX_COMMITS_PER_LOG) {
    const batch = shas.slice(start, start + MAX_COMMITS_PER_LOG);
    const output = await runGit(
      [
        "log",
        "--no-walk=unsorted",
        "--no-mailmap",
        "--no-show-signature",
        "--format=%H%x00%an <%ae>%x00",
        "--stdin",
      ],
      gitOptions,
      `${batch.join("\n")}\n`,
    );
    for (const [sha, author] of parseCommitAuthors(output.toString("utf8"))) authors.set(sha, author);
  }
  return authors;
}

function commitRecord(sha: string, commit: BlamedCommit, recordedAuthor: string | undefined): CommitRecord {
  // Never blame's author: it is the .mailmap's name for the commit (see the top of this file).
  const author = recordedAuthor === undefined ? undefined : recordText(recordedAuthor);
  const time = commit.time === undefined ? undefined : epochToRfc3339(commit.time);
  const subject = commit.summary === undefined ? undefined : recordText(commit.summary);
  return {
    sha,
    ...(author ? { author } : {}),
    ...(time ? { time } : {}),
    ...(subject ? { subject } : {}),
  };
}

async function isShallow(repository: GitRepository, options: AddedInOptions): Promise<boolean> {
  const output = await runGit(["rev-parse", "--is-shallow-repository"], {
    repository,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.gitProgram ? { program: options.gitProgram } : {}),
  });
  return output.toString("utf8").trim() === "true";
}

/**
 * For each manifest position, the commit that last wrote its line, with one `git blame` per
 * file. A line not committed yet (the work tree differs from HEAD) has none. In a shallow clone
 * the oldest commit fetched takes the blame for every line older than it, so a line blamed on
 * that boundary has none either (one warning says to fetch the full history). A file git cannot
 * blame is one warning; the others are still blamed.
 */
export async function addedInCommits(
  repo: GitRepository | string,
  positions: readonly Pick<SourcePosition, "file" | "line">[],
  options: AddedInOptions = {},
): Promise<AddedInCommits> {
  const logger = options.logger ?? silentLogger;
  const index = new AddedInIndex();
  if (positions.length === 0) return index;
  const repository =
    typeof repo === "string"
      ? await locateRepository(repo, {
          ...(options.signal ? { signal: options.signal } : {}),
          ...(options.gitProgram ? { program: options.gitProgram } : {}),
        })
      : repo;
  const gitOptions = {
    repository,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.gitProgram ? { program: options.gitProgram } : {}),
  };
  const shallow = await isShallow(repository, options);
  const linesByFile = new Map<string, number[]>();
  for (const position of positions) {
    const lines = linesByFile.get(position.file) ?? [];
    lines.push(position.line);
    linesByFile.set(position.file, lines);
  }
  let boundaryLines = 0;
  /** Per file: line -> the blamed commit's id and what blame says of it. */
  const blamedByFile = new Map<string, Map<number, { sha: string; commit: BlamedCommit }>>();
  await runBounded(
    [...linesByFile.entries()],
    BLAME_CONCURRENCY,
    async ([file, lines]) => {
      const relative = await inWorkTree(repository.workTree, file);
      if (relative === undefined) return;
      const ranges = lineRanges(lines);
      const rangeArgs =
        ranges.length > MAX_LINE_RANGES ? [] : ranges.flatMap(([from, to]) => ["-L", `${from},${to}`]);
      let output: string;
      try {
        output = (await runGit(["blame", "--porcelain", ...rangeArgs, "--", relative], gitOptions)).toString(
          "utf8",
        );
      } catch (error) {
        if (error instanceof AbortedError) throw error;
        logger.log(
          "warn",
          `cannot tell which commit added the lines of ${escapeExcerpt(relative, 200)}: ${describeError(error)}`,
        );
        return;
      }
      const blamed = parseBlamePorcelain(output);
      const found = new Map<number, { sha: string; commit: BlamedCommit }>();
      for (const line of lines) {
        const sha = blamed.lines.get(line);
        const commit = sha === undefined ? undefined : blamed.commits.get(sha);
        if (sha === undefined || commit === undefined || ZERO_SHA.test(sha)) continue;
        if (shallow && commit.boundary) {
          boundaryLines++;
          continue;
        }
        found.set(line, { sha, commit });
      }
      blamedByFile.set(file, found);
    },
    options.signal,
  );
  const shas = [
    ...new Set([...blamedByFile.values()].flatMap((lines) => [...lines.values()].map(({ sha }) => sha))),
  ];
  let authors = new Map<string, string>();
  try {
    authors = await commitAuthors(shas, gitOptions);
  } catch (error) {
    if (error instanceof AbortedError) throw error;
    logger.log(
      "warn",
      `cannot read the authors of the commits that added the manifest lines; the records name none: ${describeError(error)}`,
    );
  }
  const records = new Map<string, CommitRecord>();
  for (const [file, lines] of blamedByFile) {
    const found = new Map<number, CommitRecord>();
    for (const [line, { sha, commit }] of lines) {
      let record = records.get(sha);
      if (!record) {
        record = commitRecord(sha, commit, authors.get(sha));
        records.set(sha, record);
      }
      found.set(line, record);
    }
    index.byFile.set(file, found);
  }
  if (boundaryLines > 0) {
    logger.log(
      "warn",
      `the manifests' repository is a shallow clone: ${boundaryLines} manifest lines are older than its history, so the commit that added them is not recorded (fetch the full history: actions/checkout with fetch-depth: 0)`,
    );
  }
  return index;
}
