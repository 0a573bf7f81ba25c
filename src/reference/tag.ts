import { InvalidNameError } from "../errors.js";
import { quoteExcerpt } from "../excerpt.js";

/**
 * A tag, per the distribution reference grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pulling-manifests
 */
export type Tag = string & { readonly __brand: "Tag" };

const TAG_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export function isTag(input: string): input is Tag {
  return TAG_PATTERN.test(input);
}

export function tagProblem(input: string): string | undefined {
  if (input.length === 0) return "a tag cannot be empty";
  if (input.length > 128) return `a tag has at most 128 characters, found ${input.length}`;
  if (!/^[A-Za-z0-9_]/.test(input)) return "a tag must start with a letter, digit or underscore";
  const bad = /[^A-Za-z0-9_.-]/.exec(input);
  if (bad) return `character ${quoteExcerpt(bad[0])} is not allowed (only letters, digits, _ . -)`;
  return undefined;
}

export function parseTag(input: string): Tag {
  if (isTag(input)) return input;
  throw new InvalidNameError("tag", input, tagProblem(input) ?? "not a tag");
}
