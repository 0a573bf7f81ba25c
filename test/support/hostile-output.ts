/**
 * Hostile text for the output-injection tests (test/hostile/output-injection.test.ts), and the
 * judges that say whether what a command printed or wrote lets any of it act: a line a CI runner
 * reads as a workflow command, a terminal escape, invisible or bidi characters (Trojan Source),
 * HTML or links in a pull-request comment, a table row split by a smuggled pipe.
 *
 * The judges are written from what the consumers do, not from the promoter's encoders:
 * - the GitHub Actions runner reads `::command::` at the start of a line after leading
 *   whitespace, and `##[command]` anywhere in a line; a line ends at `\n`, `\r` or `\r\n`
 *   (https://github.com/actions/runner, src/Runner.Common/ActionCommand.cs, TryParseV2/TryParse);
 * - terminals act on C0 and C1 control characters (ESC, CSI, OSC 8 links, BEL, a lone CR);
 * - GitHub-flavoured markdown renders raw HTML, `<!--` comments, `![image](url)` and
 *   `[link](url)` outside code spans, decodes `&...;` entities, and splits table cells at every
 *   pipe not preceded by a backslash, even inside code spans (https://github.github.com/gfm/).
 */
import type { ServerResponse } from "node:http";
import type { FaultRule } from "./fault-proxy.js";

/**
 * Every trick at once: runner commands after a newline and after a lone CR, the old `##[`
 * syntax, colour, an OSC 8 hyperlink, a C1 CSI, HTML, an image, a link, an entity, a backtick and
 * a pipe, a backslash before a pipe, runs of backticks, an HTML comment, bidi overrides and isolates, a zero-width space, a line separator.
 */
export const HOSTILE_TEXT = [
  "\n::warning title=injected::newline-command",
  "\r::error file=x::carriage-return-command",
  "##[error]old-style-command",
  "\u001b[31mred\u001b[0m",
  "\u001b]8;;http://evil.example/\u0007osc8-link\u001b]8;;\u0007",
  "\u009b31mc1-csi",
  "<img src=x onerror=alert(1)>",
  "![pixel](http://evil.example/p.png)",
  "[link](http://evil.example/)",
  "&#x202e;entity",
  "`code-break` | pipe",
  "back\\|slash-pipe ``` run `` of ` ticks\\",
  "<!-- hidden",
  "\u202eevil-rtl\u202c",
  "\u2066isolate\u2069",
  "zero\u200bwidth",
  "line\u2028separator",
].join(" ");

/** The same tricks in a form a file or folder name can take: no `/`, under 255 bytes. */
export const HOSTILE_NAME = [
  "p\n::warning::nl",
  "\r::error::cr",
  "##[error]old",
  "\u001b[31mred\u001b]8;;x\u0007",
  "<img src=x>",
  "`tick`|pipe",
  "<!--",
  "\u202ertl\u200bzw",
].join(" ");

/** What the CI runner would execute: `::` at the start of a line (after whitespace), `##[` anywhere. */
function runnerCommandProblems(text: string): string[] {
  const problems: string[] = [];
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (/^\s*::/.test(line)) problems.push(`runner command at line start: ${JSON.stringify(line)}`);
    if (line.includes("##[")) problems.push(`runner ##[ command: ${JSON.stringify(line)}`);
  }
  return problems;
}

/** Control, format (bidi, zero-width), separator characters: none may be written raw. */
const UNSAFE_CHARACTER = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

function unsafeCharacterProblems(text: string, allowed: readonly string[]): string[] {
  const problems: string[] = [];
  for (const character of text) {
    if (UNSAFE_CHARACTER.test(character) && !allowed.includes(character)) {
      problems.push(
        `raw U+${(character.codePointAt(0) ?? 0).toString(16).padStart(4, "0")} in ${JSON.stringify(excerptAround(text, character))}`,
      );
    }
  }
  return [...new Set(problems)];
}

function excerptAround(text: string, character: string): string {
  const at = text.indexOf(character);
  return text.slice(Math.max(0, at - 40), at + 40);
}

/** Problems of text for a terminal or a CI log (also JSON and YAML printed there). */
export function textSinkProblems(text: string): string[] {
  return [...runnerCommandProblems(text), ...unsafeCharacterProblems(text, ["\n", "\t"])];
}

const OWN_HTML = /^<(?:\/?details|\/?summary|br)>/;
const ENTITY = /^&(?:#\d+|#x[0-9a-f]+|[a-z][a-z0-9]*);/i;
const ASCII_PUNCTUATION = /[!-/:-@[-`{-~]/;

/**
 * Problems of markdown for a pull-request comment or job summary (which the Action also prints
 * to the log): everything `textSinkProblems` finds, raw HTML other than the few tags a report
 * uses itself, links and images, entities, and table rows whose cells a value split.
 */
export function markdownProblems(markdown: string): string[] {
  const problems = textSinkProblems(markdown);
  let tableColumns: number | undefined;
  for (const line of markdown.split("\n")) {
    if (line.startsWith("|")) {
      // GFM splits cells at every pipe not preceded by a backslash, code spans included.
      const pipes = line.match(/(?<!\\)\|/g)?.length ?? 0;
      tableColumns ??= pipes;
      if (pipes !== tableColumns)
        problems.push(`table row with ${pipes} pipes, not ${tableColumns}: ${line}`);
    } else {
      tableColumns = undefined;
    }
    problems.push(...inlineProblems(line));
  }
  return problems;
}

/** Walks one line as CommonMark's inline parser would: escapes, code spans, then the rest. */
function inlineProblems(line: string): string[] {
  const problems: string[] = [];
  let i = 0;
  while (i < line.length) {
    const character = line[i] ?? "";
    if (character === "\\" && ASCII_PUNCTUATION.test(line[i + 1] ?? "")) {
      i += 2;
      continue;
    }
    if (character === "`") {
      let run = 1;
      while (line[i + run] === "`") run += 1;
      const fence = "`".repeat(run);
      let close = line.indexOf(fence, i + run);
      while (close >= 0 && line[close + run] === "`") {
        let end = close;
        while (line[end] === "`") end += 1;
        close = line.indexOf(fence, end);
      }
      // An unclosed run is literal backticks; a closed one is a code span where nothing acts.
      i = close < 0 ? i + run : close + run;
      continue;
    }
    const rest = line.slice(i);
    if (character === "<" && !OWN_HTML.test(rest)) problems.push(`raw HTML: ${rest.slice(0, 60)}`);
    if (character === "[" || (character === "!" && line[i + 1] === "["))
      problems.push(`link or image: ${rest.slice(0, 60)}`);
    if (character === "&" && ENTITY.test(rest)) problems.push(`entity: ${rest.slice(0, 20)}`);
    i += 1;
  }
  return problems;
}

/** Problems of a JSON document: it must parse, and printed to a log it must act as text does. */
export function jsonProblems(text: string): string[] {
  const problems = textSinkProblems(text);
  for (const document of text.split(/\n(?=\{)/)) {
    try {
      JSON.parse(document);
    } catch (error) {
      problems.push(`not JSON: ${(error as Error).message}`);
    }
  }
  return problems;
}

/**
 * A registry whose every error carries `message` in its body: manifests answer HEAD with 200 but
 * no digest (so the client reads them with GET) and GET with 403; tag and catalog listings with
 * 403 too. Everything else is forwarded to the real registry behind the fault proxy.
 */
export function hostileErrorRules(message: string): FaultRule[] {
  const body = JSON.stringify({ errors: [{ code: "DENIED", message, detail: message }] });
  const deny = (response: ServerResponse): void => {
    response.writeHead(403, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
    });
    response.end(body);
  };
  return [
    {
      name: "manifest head without digest",
      method: "HEAD",
      path: /\/manifests\//,
      fault: {
        kind: "respond",
        respond: (_request, response) => {
          response.writeHead(200, { "content-type": "application/json", "content-length": 0 });
          response.end();
        },
      },
    },
    {
      name: "hostile error",
      method: "GET",
      path: /\/(?:manifests\/|tags\/list$|_catalog$)/,
      fault: {
        kind: "respond",
        respond: (_request, response) => {
          deny(response);
        },
      },
    },
  ];
}
