import { UsageError } from "../../errors.js";

/**
 * Command lines in the syntax of Go's pflag (what kpromo's cobra commands parse), so a kpromo
 * job's arguments mean here what they meant there: `--name=value` or `--name value`, booleans
 * as `--name` or `--name=true|false` (strconv.ParseBool's spellings), integers in decimal.
 * One difference on purpose: a word that is not a flag is refused instead of ignored, because
 * pflag reads `--confirm false` as `--confirm` plus an ignored word — a write the user meant
 * to turn off.
 */

export type GoFlagKind = "bool" | "string" | "int" | "strings";

export interface GoFlagSpec {
  readonly kind: GoFlagKind;
}

export type GoFlagValues = Record<string, string | boolean | number | string[] | undefined>;

const TRUE_WORDS = new Set(["1", "t", "T", "true", "TRUE", "True"]);
const FALSE_WORDS = new Set(["0", "f", "F", "false", "FALSE", "False"]);

/**
 * How an error names a word: quoted, for the command line the user typed; by position for an
 * options variable, which is where keys and tokens are named and whose mistakes land in a public
 * job log.
 */
export interface WordSource {
  /** The variable the words came from; undefined for the command line. */
  readonly variable?: string;
}

function wordName(source: WordSource, index: number, text: string): string {
  return source.variable === undefined
    ? JSON.stringify(text)
    : `(word ${index + 1} of ${source.variable}, not shown)`;
}

function parseBool(name: string, text: string, described: string): boolean {
  if (TRUE_WORDS.has(text)) return true;
  if (FALSE_WORDS.has(text)) return false;
  throw new UsageError(`invalid argument ${described} for --${name}: write true or false`);
}

function parseInt(name: string, text: string, described: string): number {
  if (!/^[+-]?\d{1,15}$/.test(text)) {
    throw new UsageError(`invalid argument ${described} for --${name}: a whole number is needed`);
  }
  return Number(text);
}

/**
 * Parses `argv` against `specs`. Values of `strings` flags accumulate (a repeated flag); any other
 * repeated flag keeps its last value, as pflag does.
 */
export function parseGoFlags(
  argv: readonly string[],
  specs: Readonly<Record<string, GoFlagSpec>>,
  source: WordSource = {},
): GoFlagValues {
  const where = source.variable === undefined ? "" : ` in ${source.variable}`;
  const values: GoFlagValues = {};
  for (let index = 0; index < argv.length; index += 1) {
    const word = argv[index] ?? "";
    if (word === "--") {
      const rest = argv.slice(index + 1);
      if (rest.length > 0) {
        throw new UsageError(`unexpected argument ${wordName(source, index + 1, rest[0] ?? "")}`);
      }
      break;
    }
    if (!word.startsWith("--") || word === "--") {
      throw new UsageError(
        word.startsWith("-")
          ? `unknown shorthand flag ${wordName(source, index, word)}: flags are written --name or --name=value`
          : `unexpected argument ${wordName(source, index, word)}: this command takes only flags (a boolean is set with --name=false, not --name false)`,
      );
    }
    const equals = word.indexOf("=");
    const name = equals === -1 ? word.slice(2) : word.slice(2, equals);
    const inline = equals === -1 ? undefined : word.slice(equals + 1);
    const spec = specs[name];
    if (!spec) throw new UsageError(`unknown flag: --${name}${where}`);
    const at = index;
    if (spec.kind === "bool") {
      values[name] = inline === undefined ? true : parseBool(name, inline, wordName(source, at, inline));
      continue;
    }
    let text = inline;
    if (text === undefined) {
      const next = argv[index + 1];
      if (next === undefined) throw new UsageError(`flag needs an argument: --${name}${where}`);
      text = next;
      index += 1;
    }
    const described = wordName(source, index, text);
    if (spec.kind === "int") values[name] = parseInt(name, text, described);
    else if (spec.kind === "strings") {
      const list = values[name];
      values[name] = [...(Array.isArray(list) ? list : []), text];
    } else values[name] = text;
  }
  return values;
}

/**
 * Splits an options variable (`PROMOTER_CIP_OPTIONS`) into words: whitespace separates them, and
 * single or double quotes keep spaces inside one word. No expansion of any kind.
 */
export function splitOptionWords(text: string): string[] {
  const words: string[] = [];
  let current: string | undefined;
  let quote: string | undefined;
  for (const character of text) {
    if (quote) {
      if (character === quote) quote = undefined;
      else current = (current ?? "") + character;
    } else if (character === "'" || character === '"') {
      quote = character;
      current ??= "";
    } else if (/\s/.test(character)) {
      if (current !== undefined) words.push(current);
      current = undefined;
    } else current = (current ?? "") + character;
  }
  if (quote) throw new UsageError(`unbalanced ${quote} in the options variable`);
  if (current !== undefined) words.push(current);
  return words;
}
