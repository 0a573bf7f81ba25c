import { isBranchName, isCommitSha } from "../github/index.js";
import { hasUnsafeCharacter, replaceUnsafeCharacters } from "../output/encode.js";

/**
 * Pure readers of the review facts that arrive as text: a merge commit's subject (which only picks among what GitHub's API says),
 * Prow's `PULL_REFS`, a git remote's URL. All of it is written by someone else (a pull request's
 * author writes its title, a CI configuration its variables) and goes into a signed record, so
 * each reader keeps only what has the shape of what the field means and drops the rest.
 */

/** Characters of a commit's author or subject kept in a record. */
export const MAX_RECORD_TEXT_CHARS = 200;
/** Digits of a pull request number (GitHub's are far below a billion). */
const PULL_NUMBER = /^[1-9][0-9]{0,8}$/;

/**
 * Code units of a text read before cleaning it: a commit subject can be hundreds of megabytes
 * (it compresses to almost nothing in a push), and a record keeps `max` characters of it.
 */
const READ_UNITS_PER_CHAR = 8;

/**
 * Text for a record: the characters output/encode.ts never writes raw (controls, bidi and
 * zero-width format characters, line separators, lone surrogates, fillers that render as nothing)
 * dropped, at most `max` characters (then `…`).
 */
export function recordText(text: string, max = MAX_RECORD_TEXT_CHARS): string {
  const limit = max * READ_UNITS_PER_CHAR;
  const cut = text.length > limit;
  // A surrogate pair split by the cut leaves a lone surrogate, which is unsafe and dropped.
  const clean = Array.from(replaceUnsafeCharacters(cut ? text.slice(0, limit) : text, () => "").trim());
  return clean.length <= max && !cut ? clean.join("") : `${clean.slice(0, max).join("")}…`;
}

/** A pull request number written as text (`PULL_NUMBER`, a commit subject), or undefined. */
export function parsePullNumber(text: string | undefined): number | undefined {
  return text !== undefined && PULL_NUMBER.test(text) ? Number(text) : undefined;
}

/**
 * The pull request a merge commit's subject names: GitHub's and Tide's merge commits
 * (`Merge pull request #123 from owner/branch`) and GitHub's squash merges (`Subject (#123)`).
 */
export function pullNumberFromSubject(subject: string): number | undefined {
  const merge = /^Merge pull request #([0-9]+) from \S/.exec(subject);
  const squash = /\(#([0-9]+)\)$/.exec(subject.trimEnd());
  return parsePullNumber(merge?.[1] ?? squash?.[1]);
}

/** The branch a record names: `refs/heads/main` for `main`; undefined when it is not a ref name. */
export function branchRef(name: string | undefined): string | undefined {
  if (!isBranchName(name)) return undefined;
  return name.startsWith("refs/") ? name : `refs/heads/${name}`;
}

export interface PullRefs {
  readonly baseRef: string;
  readonly baseSha?: string;
  readonly pulls: readonly { readonly number: number; readonly sha: string }[];
}

/**
 * Prow's `PULL_REFS`: `BASE_REF[:BASE_SHA]` then `,NUMBER:SHA[:REF]` per pull request (a batch
 * has several), as Prow's `Refs.String` writes it. Anything else is an error, never a guess.
 */
export function parsePullRefs(text: string): PullRefs | { readonly error: string } {
  if (text.length > 16_384) return { error: "longer than 16384 characters" };
  const [base = "", ...pullParts] = text.split(",");
  const [baseRef, baseSha, ...baseRest] = base.split(":");
  if (!isBranchName(baseRef) || baseRest.length > 0 || (baseSha !== undefined && !isCommitSha(baseSha))) {
    return { error: `the base ${JSON.stringify(recordText(base, 80))} is not BRANCH[:SHA]` };
  }
  const pulls: { number: number; sha: string }[] = [];
  for (const part of pullParts) {
    const [numberText, sha, ref, ...rest] = part.split(":");
    const number = parsePullNumber(numberText);
    if (
      number === undefined ||
      !isCommitSha(sha) ||
      rest.length > 0 ||
      (ref !== undefined && !isBranchName(ref))
    ) {
      return { error: `${JSON.stringify(recordText(part, 80))} is not NUMBER:SHA[:REF]` };
    }
    if (pulls.some((pull) => pull.number === number))
      return { error: `pull request ${number} is listed twice` };
    pulls.push({ number, sha });
  }
  return { baseRef, ...(baseSha === undefined ? {} : { baseSha }), pulls };
}

/**
 * A git remote's URL as a record may carry it: user and password (a token is often put there),
 * query and fragment removed, and a trailing `.git` dropped. scp-like `git@host:org/repo` becomes
 * `ssh://host/org/repo`. A local path or anything unreadable gives undefined: it names no
 * repository a reader of the record could find.
 */
export function publicRepositoryUrl(remote: string): string | undefined {
  const text = remote.trim();
  if (text === "" || text.length > 2048 || hasUnsafeCharacter(text)) return undefined;
  const scp = /^(?:[^@/:\s]+@)?([A-Za-z0-9.-]+):(?!\/\/)([^\s\\:][^\s\\]*)$/.exec(text);
  let url: URL;
  try {
    url = new URL(scp ? `ssh://${scp[1]}/${(scp[2] ?? "").replace(/^\/+/, "")}` : text);
  } catch {
    return undefined;
  }
  if (!["https:", "http:", "ssh:", "git:"].includes(url.protocol) || url.hostname === "") return undefined;
  const pathname = url.pathname.replace(/\/+$/, "").replace(/\.git$/, "");
  if (pathname === "" || pathname === "/") return undefined;
  return `${url.protocol}//${url.host}${pathname}`;
}
