import { replaceUnsafeCharacters } from "./output/encode.js";

/**
 * How a message shows a value that came from input (a manifest, a registry's answer): as a short,
 * escaped excerpt. Short, so that a file that is one long string (an environment, a key file)
 * cannot ride along in a message; escaped, so that no character of the value can act on the
 * terminal, the log or the rendered pull-request comment (terminal escapes, bidi overrides that
 * reorder what a reviewer reads, line separators that forge a new line).
 */

/** Characters of a value a message quotes at most: a name is recognisable, a file is not carried. */
export const MAX_EXCERPT_CHARS = 80;

/**
 * Characters written as `\uXXXX`: those output/encode.ts never writes raw (controls, format
 * characters such as bidi overrides and zero-width characters, line and paragraph separators,
 * unpaired surrogates, fillers that render as nothing).
 */
function escapeUnsafe(text: string): string {
  return replaceUnsafeCharacters(
    text,
    (character) => `\\u${(character.codePointAt(0) ?? 0).toString(16).padStart(4, "0")}`,
  );
}

/** The first `max` characters (code points: a surrogate pair is never split), then `…` if cut. */
function cut(value: string, max: number): string {
  if (value.length <= max) return value;
  // A code point is one or two UTF-16 units: the first 2 × max units hold the first max code points.
  const head = Array.from(value.slice(0, 2 * max));
  if (head.length <= max && value.length <= 2 * max) return value;
  return `${head.slice(0, max).join("")}…`;
}

/**
 * A value as a double-quoted excerpt for a message: at most `max` characters of it, then `…`,
 * with `"` and `\` escaped as in JSON and every unsafe character as `\uXXXX`.
 */
export function quoteExcerpt(value: string, max = MAX_EXCERPT_CHARS): string {
  const shown = cut(value, max);
  // JSON escapes quotes, backslashes and C0 controls; the rest of the unsafe set is escaped here.
  return escapeUnsafe(JSON.stringify(shown));
}

/**
 * Text that is not a value but may contain one (a path, another library's message), for a
 * message: unsafe characters escaped, at most `max` characters.
 */
export function escapeExcerpt(text: string, max = Number.POSITIVE_INFINITY): string {
  return escapeUnsafe(cut(text.replace(/\\/g, "\\\\"), max));
}
