/**
 * Sink encoders: the one place that knows how text from outside the program (file and folder
 * names, image names, tags, manifest scalars, registry error bodies, notification fields) is
 * written so that it stays text in the sink it reaches. Outside text can act in every sink:
 *
 * - terminals act on control characters: ESC starts colour and OSC 8 hyperlink sequences, C1
 *   CSI (U+009B) does the same, a lone CR rewrites the line;
 * - the GitHub Actions runner reads a line that starts (after whitespace) with `::` as a workflow
 *   command (`::add-mask::`, `::error::`, `::stop-commands::`) and `##[command]` anywhere in a
 *   line; CR ends a line for it as LF does
 *   (https://github.com/actions/runner/blob/main/src/Runner.Common/ActionCommand.cs);
 * - people read bidi overrides and invisible characters as something else (Trojan Source,
 *   CVE-2021-42574, https://trojansource.codes);
 * - markdown renders HTML, `<!--` comments that hide the rest of a pull-request comment, images
 *   that call out, links, entities, and table cells split by a pipe
 *   (https://github.github.com/gfm/, sections 6.1 backslash escapes and 6.3 code spans);
 * - Slack's mrkdwn reads `<...>` as links and mentions
 *   (https://api.slack.com/reference/surfaces/formatting#escaping).
 *
 * Every encoder is pure and idempotent on its own output where that matters (`textValue`), and
 * escapes in a notation that JSON, JavaScript and people read the same way (`\n`, `\u001b`).
 */

/**
 * Characters never written raw: C0 and C1 controls and DEL (Cc), format characters (Cf: bidi
 * embeddings, overrides and isolates, zero-width space and joiners, word joiner, BOM, soft hyphen,
 * tag characters), line and paragraph separators (Zl, Zp), lone surrogates (Cs), and characters
 * that render as nothing (combining grapheme joiner, Hangul fillers).
 */
const UNSAFE_BEYOND_CONTROLS = "\\p{Cf}\\p{Zl}\\p{Zp}\\p{Cs}\\u034f\\u115f\\u1160\\u3164\\uffa0";

/**
 * The unsafe characters except those in `keep` (layout characters a sink writes itself). Kept
 * characters are left out of the pattern rather than skipped in a callback: a large JSON report
 * has millions of line feeds.
 */
function unsafeCharacters(keep: string): RegExp {
  const controls: string[] = [];
  for (let code = 0; code <= 0x9f; code += 1) {
    if ((code < 0x20 || code >= 0x7f) && !keep.includes(String.fromCharCode(code))) {
      controls.push(`\\u${code.toString(16).padStart(4, "0")}`);
    }
  }
  return new RegExp(`[${controls.join("")}${UNSAFE_BEYOND_CONTROLS}]`, "gu");
}

const UNSAFE_CHARACTERS = unsafeCharacters("");
const UNSAFE_EXCEPT_LINE_FEED = unsafeCharacters("\n");
const UNSAFE_EXCEPT_LAYOUT = unsafeCharacters("\n\t");
const UNSAFE_EXCEPT_TERMINAL_LAYOUT = unsafeCharacters("\n\t\r");

/**
 * `text` with each unsafe character (every control, and `UNSAFE_BEYOND_CONTROLS`) replaced by
 * `replacement` of it: the one definition for code that drops them (a signed record's text,
 * provenance/review-facts.ts) or escapes them its own way (message excerpts, excerpt.ts).
 */
export function replaceUnsafeCharacters(text: string, replacement: (character: string) => string): string {
  return text.replace(UNSAFE_CHARACTERS, replacement);
}

/** Whether `text` holds a character `replaceUnsafeCharacters` replaces. */
export function hasUnsafeCharacter(text: string): boolean {
  // `search` starts at 0 whatever the shared global pattern's lastIndex.
  return text.search(UNSAFE_CHARACTERS) !== -1;
}

/** The GitHub Actions runner's command at a line start, after whitespace (`TrimStart`). */
const RUNNER_COMMAND_AT_LINE_START = /^(\s*):(?=:)/gmu;
/** `##[command]` (GitHub, Azure Pipelines' `##vso[`, TeamCity's `##teamcity[`) anywhere in a line. */
const HASH_COMMAND = /#(?=#[A-Za-z]*\[)/g;

const SHORT_ESCAPES: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** `\u001b` for each UTF-16 unit: one notation for JSON, JavaScript and people. */
function unicodeEscape(text: string): string {
  let escaped = "";
  for (let i = 0; i < text.length; i += 1) {
    escaped += `\\u${text.charCodeAt(i).toString(16).padStart(4, "0")}`;
  }
  return escaped;
}

function escapeCharacter(character: string): string {
  return SHORT_ESCAPES[character] ?? unicodeEscape(character);
}

/** Characters `pattern` matches as visible escapes (`\n`, `\r`, `\t`, `\u202e`). */
function escapeUnsafeCharacters(text: string, pattern = UNSAFE_CHARACTERS): string {
  return text.replace(pattern, escapeCharacter);
}

/** Breaks what the CI runner would read as a command, in every line of `text`. */
function breakRunnerCommands(text: string): string {
  return text
    .replace(RUNNER_COMMAND_AT_LINE_START, (_match, space: string) => `${space}\\u003a`)
    .replace(HASH_COMMAND, "\\u0023");
}

/**
 * An outside value, or a whole line holding such values, for a terminal, a CI log or a text
 * log line: it stays on its line (line breaks become `\n`), moves no cursor, starts no escape
 * sequence, hides or reorders nothing and is no runner command. Idempotent.
 */
export function textValue(value: string): string {
  return breakRunnerCommands(escapeUnsafeCharacters(value));
}

/** Lines for a terminal or a CI log, each encoded by `textValue`, joined with newlines. */
export function textLines(lines: readonly string[]): string {
  return lines.map(textValue).join("\n");
}

/**
 * The last line of defence of a text sink (stdout, stderr, a report file), for text that is
 * already laid out in lines: unsafe characters are escaped except line feeds, tabs and, for a
 * terminal, the carriage returns of a progress display; no line is a runner command. A renderer
 * that forgot `textValue` can still break no line, colour nothing and run no command.
 */
export function guardedOutput(text: string, options: { terminal: boolean }): string {
  return breakRunnerCommands(
    escapeUnsafeCharacters(text, options.terminal ? UNSAFE_EXCEPT_TERMINAL_LAYOUT : UNSAFE_EXCEPT_LAYOUT),
  );
}

/**
 * Markdown punctuation an outside value may not use: everything that can start inline markup
 * (emphasis, code, links, images, raw HTML, entities, strikethrough, math), split a table cell
 * or make `##[`. Backslash escapes of ASCII punctuation render as the character itself
 * (GFM 6.1), in table cells too.
 */
const MARKDOWN_SPECIAL = /[\\`*_[\]<>!|~$&#]/g;

/**
 * An outside value as markdown text (a paragraph, a list item, a table cell): it renders as
 * exactly its characters, with unsafe characters as visible escapes; no markup, no HTML.
 */
export function markdownText(value: string): string {
  return escapeUnsafeCharacters(value).replace(MARKDOWN_SPECIAL, (character) => `\\${character}`);
}

/**
 * An outside value as a markdown code span, safe in a table cell: the fence is longer than any
 * run of backticks inside (GFM 6.3), pipes are escaped (a table splits cells at them even in code
 * spans; `\|` renders as `|` there and, outside tables, as `\|`), unsafe characters are visible
 * escapes and `##[` is broken. Empty for an empty value.
 */
export function markdownCode(value: string): string {
  if (value === "") return "";
  const content = textValue(value).replace(/\|/g, "\\|");
  const longestRun = Math.max(0, ...(content.match(/`+/g) ?? []).map((run) => run.length));
  const fence = "`".repeat(longestRun + 1);
  const padding = /^[` ]|[` ]$/.test(content) ? " " : "";
  return `${fence}${padding}${content}${padding}${fence}`;
}

/**
 * JSON text of `value` that is also safe to print: `JSON.stringify` escapes C0 controls but not
 * C1 controls, DEL, bidi or invisible characters, nor `##[`; these are written as `\uXXXX`, which
 * decodes to the same string. (They can only occur inside JSON strings, where the escape is valid.)
 */
export function jsonText(value: unknown, indent?: number): string {
  const text = JSON.stringify(value, null, indent);
  // The only raw control character JSON.stringify writes is the line feed of its indentation.
  return breakRunnerCommands(text.replace(UNSAFE_EXCEPT_LINE_FEED, unicodeEscape));
}

/**
 * Text for a Slack-compatible webhook: `textValue` (chat bridges forward alerts to logs and
 * terminals too), then `&`, `<` and `>` escaped as Slack wants them.
 */
export function slackText(value: string): string {
  return textValue(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * The forms a secret takes once an encoder above has written it: a redactor that knows them
 * finds the secret in encoded output as well as in raw text.
 */
export const ENCODED_SECRET_FORMS: readonly ((secret: string) => string)[] = [
  textValue,
  markdownText,
  (secret) => jsonText(secret).slice(1, -1),
  slackText,
];
