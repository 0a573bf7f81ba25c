import { describe, expect, it } from "vitest";
import { textValue } from "../output/encode.js";
import {
  branchRef,
  parsePullRefs,
  publicRepositoryUrl,
  pullNumberFromSubject,
  recordText,
} from "./review-facts.js";

const A = "a".repeat(40);
const B = "b".repeat(40);
const C = "c".repeat(64);

describe("parsePullRefs", () => {
  it("reads Prow's forms: a postsubmit, a presubmit, a batch, with and without the pull's ref", () => {
    expect(parsePullRefs(`main:${A}`)).toEqual({ baseRef: "main", baseSha: A, pulls: [] });
    expect(parsePullRefs("main")).toEqual({ baseRef: "main", pulls: [] });
    expect(parsePullRefs(`main:${A},123:${B}`)).toEqual({
      baseRef: "main",
      baseSha: A,
      pulls: [{ number: 123, sha: B }],
    });
    expect(parsePullRefs(`release-1.30:${A},1:${B}:feature/x,2:${C}`)).toEqual({
      baseRef: "release-1.30",
      baseSha: A,
      pulls: [
        { number: 1, sha: B },
        { number: 2, sha: C },
      ],
    });
  });

  it("refuses everything else, never guessing", () => {
    for (const text of [
      "",
      `main:${A}:x`,
      `main:xyz`,
      `main:${A},0:${B}`,
      `main:${A},-1:${B}`,
      `main:${A},1e3:${B}`,
      `main:${A},12:${B.slice(1)}`,
      `main:${A},12`,
      `main:${A},12:${B},12:${B}`,
      `main:${A},12:${B}:bad..ref`,
      `-main:${A}`,
      `main:${A},`,
      `main\n:${A}`,
      "x".repeat(20_000),
    ]) {
      expect(parsePullRefs(text), text.slice(0, 40)).toHaveProperty("error");
    }
  });
});

describe("merge commit subjects and trailers", () => {
  it("finds the pull request of a GitHub or Tide merge and of a squash merge", () => {
    expect(pullNumberFromSubject("Merge pull request #42 from bob/feature")).toBe(42);
    expect(pullNumberFromSubject("Add app v2 (#1234)")).toBe(1234);
    expect(pullNumberFromSubject("Revert #42")).toBeUndefined();
    expect(pullNumberFromSubject("Merge pull request #0 from x/y")).toBeUndefined();
    expect(pullNumberFromSubject("Add (#99999999999999)")).toBeUndefined();
  });

  it("names a branch as a ref, and refuses what is not one", () => {
    expect(branchRef("main")).toBe("refs/heads/main");
    expect(branchRef("refs/heads/release-1.30")).toBe("refs/heads/release-1.30");
    expect(branchRef("main\nx")).toBeUndefined();
    expect(branchRef("a..b")).toBeUndefined();
    expect(branchRef(undefined)).toBeUndefined();
  });

  it("record text is one line without controls or bidi overrides, and bounded", () => {
    expect(recordText("a\u202eb\nc\u0000d\u200b")).toBe("abcd");
    expect(recordText("é".repeat(300))).toBe(`${"é".repeat(200)}…`);
  });

  it("record text drops every character output/encode.ts escapes, and keeps every other one", () => {
    // The Hangul fillers and the combining grapheme joiner render as nothing, like U+200B.
    expect(recordText("promote \u3164\u3164\u034f\u115f\u1160\uffa0reviewed")).toBe("promote reviewed");
    // Every code point (lone surrogates included): one definition of unsafe, not two lists.
    const disagreements: string[] = [];
    for (let code = 0; code <= 0x10ffff; code += 1) {
      const character = String.fromCodePoint(code);
      const escaped = textValue(character) !== character;
      const kept = recordText(`a${character}b`);
      if (kept !== (escaped ? "ab" : `a${character}b`)) disagreements.push(code.toString(16));
    }
    expect(disagreements).toEqual([]);
  });

  it("record text reads only the head of a huge text (a commit subject of many megabytes)", () => {
    // 64 Mi code units: spreading them into an array of characters would take gigabytes.
    expect(recordText("a".repeat(64 * 1024 * 1024))).toBe(`${"a".repeat(200)}…`);
    // Cut inside a surrogate pair: the half left is dropped, never recorded.
    const emoji = "😀".repeat(2000);
    expect(recordText(emoji)).toBe(`${"😀".repeat(200)}…`);
    // Whatever is cut is marked as cut, even when few characters of the head survive cleaning.
    expect(recordText(`${"\u200b".repeat(5000)}tail`)).toBe("…");
  });
});

describe("publicRepositoryUrl", () => {
  it("drops credentials, query, fragment and .git; reads scp-like remotes; refuses local paths", () => {
    expect(publicRepositoryUrl("https://x-access-token:ghs_secret@github.com/org/repo.git")).toBe(
      "https://github.com/org/repo",
    );
    expect(publicRepositoryUrl("https://github.com/org/repo?token=secret#frag")).toBe(
      "https://github.com/org/repo",
    );
    expect(publicRepositoryUrl("git@github.com:org/repo.git")).toBe("ssh://github.com/org/repo");
    expect(publicRepositoryUrl("ssh://git@git.example:2222/org/repo")).toBe(
      "ssh://git.example:2222/org/repo",
    );
    expect(publicRepositoryUrl("/srv/git/repo.git")).toBeUndefined();
    expect(publicRepositoryUrl("file:///srv/git/repo.git")).toBeUndefined();
    expect(publicRepositoryUrl("https://github.com/org/repo\nInjected: yes")).toBeUndefined();
    expect(publicRepositoryUrl("ext::sh -c touch% /tmp/pwned")).toBeUndefined();
  });
});
