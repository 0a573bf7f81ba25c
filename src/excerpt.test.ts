import { describe, expect, it } from "vitest";
import { escapeExcerpt, MAX_EXCERPT_CHARS, quoteExcerpt } from "./excerpt.js";

describe("quoteExcerpt", () => {
  it("quotes a short value as JSON does", () => {
    expect(quoteExcerpt("gcr.io/k8s-staging-foo")).toBe('"gcr.io/k8s-staging-foo"');
    expect(quoteExcerpt('a "b" \\ c')).toBe('"a \\"b\\" \\\\ c"');
    expect(quoteExcerpt("")).toBe('""');
  });

  it("keeps at most MAX_EXCERPT_CHARS characters and marks the cut", () => {
    const long = "x".repeat(5000);
    expect(quoteExcerpt(long)).toBe(`"${"x".repeat(MAX_EXCERPT_CHARS)}…"`);
    expect(quoteExcerpt("x".repeat(MAX_EXCERPT_CHARS))).toBe(`"${"x".repeat(MAX_EXCERPT_CHARS)}"`);
    expect(quoteExcerpt("abcdef", 3)).toBe('"abc…"');
  });

  it("never splits a surrogate pair", () => {
    const emoji = "\u{1F600}";
    expect(quoteExcerpt(emoji.repeat(10), 3)).toBe(`"${emoji.repeat(3)}…"`);
    expect(quoteExcerpt(emoji.repeat(3), 3)).toBe(`"${emoji.repeat(3)}"`);
  });

  it("escapes every character that could act on a terminal, a log or a rendered page", () => {
    expect(quoteExcerpt("a\u001b[2Jb")).toBe('"a\\u001b[2Jb"');
    expect(quoteExcerpt("l1\nl2\r\t")).toBe('"l1\\nl2\\r\\t"');
    expect(quoteExcerpt("\u007f\u0085\u009b")).toBe('"\\u007f\\u0085\\u009b"');
    expect(quoteExcerpt("exe.\u202egnp")).toBe('"exe.\\u202egnp"');
    expect(quoteExcerpt("\u2066\u2069\u200b\ufeff")).toBe('"\\u2066\\u2069\\u200b\\ufeff"');
    expect(quoteExcerpt("a\u2028b\u2029")).toBe('"a\\u2028b\\u2029"');
    expect(quoteExcerpt("lone \ud800")).toBe('"lone \\ud800"');
    // Letters of any script stay readable.
    expect(quoteExcerpt("café ☃ 東京")).toBe('"café ☃ 東京"');
  });
});

describe("escapeExcerpt", () => {
  it("escapes unsafe characters and backslashes without quoting", () => {
    expect(escapeExcerpt("images/a\nb/images.yaml")).toBe("images/a\\u000ab/images.yaml");
    expect(escapeExcerpt("a\\u001b")).toBe("a\\\\u001b");
  });

  it("cuts at max characters when asked", () => {
    expect(escapeExcerpt("abcdef", 4)).toBe("abcd…");
    expect(escapeExcerpt("abc", 4)).toBe("abc");
  });
});
