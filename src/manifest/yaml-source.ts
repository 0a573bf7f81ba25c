import {
  Composer,
  CST,
  isAlias,
  isScalar,
  isSeq,
  Lexer,
  LineCounter,
  Parser,
  Scalar,
  visit,
  type Document,
  type ParsedNode,
} from "yaml";
import { escapeExcerpt } from "../excerpt.js";
import { makeFinding } from "./finding.js";
import type { Finding, SourcePosition } from "./model.js";

/**
 * Safe YAML reading for promotion manifests: the whole YAML 1.2 syntax through eemeli/yaml, but
 * with every scalar kept as the string that was written (the failsafe schema: tag `3.10` stays
 * "3.10", never the number 3.1) and with limits that refuse hostile input quickly.
 *
 * The limits are far above anything a real manifest needs (the largest known file, the frozen
 * legacy backfill, is 3 MB deep 5 with no aliases).
 */

/** Larger files are refused without being read. */
export const MAX_MANIFEST_FILE_BYTES = 16 * 1024 * 1024;
/**
 * Deepest nesting of collections. A manifest needs 6 levels; deep input would otherwise make the
 * parser slow (flow collections) and overflow the composer's stack.
 */
export const MAX_YAML_DEPTH = 64;
/** Aliases (`*name`) per file. */
export const MAX_YAML_ALIASES = 100;
/** Nodes reached through aliases per file: stops "billion laughs" expansion. */
export const MAX_YAML_ALIAS_EXPANSION = 10_000;
/** YAML syntax errors reported per file; the rest are counted in the last message. */
export const MAX_YAML_ERRORS_PER_FILE = 20;
/**
 * Characters of a YAML library message kept: the longest of its own sentences has 97; the rest
 * of a longer one is text quoted from the file (a tag, a block scalar header).
 */
export const MAX_YAML_MESSAGE_CHARS = 120;

/** A parsed YAML file: its root node (undefined for an empty or comment-only file) and positions. */
export class YamlSource {
  readonly file: string;
  readonly root: ParsedNode | undefined;
  private readonly lineCounter: LineCounter;
  private readonly document: Document.Parsed;
  /** Where this document's text starts in the file (non-zero for one item of a split file). */
  private readonly baseOffset: number;
  private aliasTargets: Map<ParsedNode, ParsedNode | undefined> | undefined;
  private expandedNodes = 0;

  constructor(file: string, document: Document.Parsed, lineCounter: LineCounter, baseOffset = 0) {
    this.file = file;
    this.document = document;
    this.lineCounter = lineCounter;
    this.baseOffset = baseOffset;
    this.root = document.contents ?? undefined;
  }

  /** 1-based line and column of an offset in this document's text. */
  positionAt(offset: number): SourcePosition {
    const { line, col } = this.lineCounter.linePos(this.baseOffset + offset);
    return { file: this.file, line, column: col };
  }

  positionOf(node: ParsedNode): SourcePosition {
    return this.positionAt(node.range[0]);
  }

  /**
   * The node an alias stands for (the last anchor of that name before it), or the node itself.
   * Throws `YamlLimitError` when aliases expand to too many nodes.
   */
  dereference(node: ParsedNode): ParsedNode | undefined {
    if (!isAlias(node)) return node;
    this.aliasTargets ??= collectAliasTargets(this.document);
    const target = this.aliasTargets.get(node);
    if (target !== undefined) {
      // Each use of an alias copies its whole target; nested aliases count again when reached.
      this.expandedNodes += subtreeSize(target);
      if (this.expandedNodes > MAX_YAML_ALIAS_EXPANSION) {
        throw new YamlLimitError(
          node.range[0],
          `aliases expand to more than ${MAX_YAML_ALIAS_EXPANSION} nodes (a YAML alias bomb?)`,
        );
      }
    }
    return target;
  }
}

const subtreeSizes = new WeakMap<ParsedNode, number>();

/** Nodes in a subtree, not following aliases (a pair counts its key and value). */
function subtreeSize(node: ParsedNode): number {
  const cached = subtreeSizes.get(node);
  if (cached !== undefined) return cached;
  let size = 0;
  visit(node, {
    Node() {
      size += 1;
    },
  });
  subtreeSizes.set(node, size);
  return size;
}

/** Raised inside parsing when input exceeds a limit; becomes a `yaml-limit` finding. */
export class YamlLimitError extends Error {
  readonly offset: number;
  constructor(offset: number, message: string) {
    super(message);
    this.offset = offset;
  }
}

/**
 * Runs a reader over a parsed source; when aliases expand past the limit, the findings made
 * so far are replaced by one `yaml-limit` finding and the result is undefined.
 */
export function readWithinLimits<T>(source: YamlSource, findings: Finding[], read: () => T): T | undefined {
  const before = findings.length;
  try {
    return read();
  } catch (error) {
    if (!(error instanceof YamlLimitError)) throw error;
    findings.length = before;
    findings.push(makeFinding("yaml-limit", source.positionAt(error.offset), error.message));
    return undefined;
  }
}

/** One pass over the document, in order, mapping each alias to the last anchor before it. */
function collectAliasTargets(document: Document.Parsed): Map<ParsedNode, ParsedNode | undefined> {
  const anchors = new Map<string, ParsedNode>();
  const targets = new Map<ParsedNode, ParsedNode | undefined>();
  visit(document, {
    Node(_key, node) {
      const parsed = node as ParsedNode;
      if (isAlias(parsed)) {
        targets.set(parsed, anchors.get(parsed.source));
        return;
      }
      if (parsed.anchor) anchors.set(parsed.anchor, parsed);
    },
  });
  return targets;
}

/**
 * The parser's token stream with a depth limit. The parser's stack is the chain of collections
 * open at the current token, so its length is the nesting depth; checking it after every lexeme
 * stops deep input before it costs time and before the composer recurses into it.
 */
function* depthLimitedTokens(text: string, lineCounter: LineCounter | undefined): Generator<CST.Token> {
  const parser = new Parser(lineCounter?.addNewLine);
  lineCounter?.addNewLine(0);
  let aliases = 0;
  let offset = 0;
  let previous = "";
  for (const lexeme of new Lexer().lex(text)) {
    yield* parser.next(lexeme);
    if (parser.stack.length > MAX_YAML_DEPTH) {
      throw new YamlLimitError(offset, `collections are nested more than ${MAX_YAML_DEPTH} levels deep`);
    }
    // An alias is a lexeme starting with *; scalar contents (which may too) follow the scalar marker.
    if (lexeme.charCodeAt(0) === 42 /* "*" */ && previous !== CST.SCALAR) {
      aliases += 1;
      if (aliases > MAX_YAML_ALIASES) {
        throw new YamlLimitError(offset, `more than ${MAX_YAML_ALIASES} aliases`);
      }
    }
    offset += lexeme.length;
    previous = lexeme;
  }
  yield* parser.end();
}

/**
 * Parses one YAML document. Syntax problems and exceeded limits become findings (the file then
 * yields no source); YAML warnings become `yaml-warning` findings.
 */
export function parseYamlSource(
  text: string,
  file: string,
): { source: YamlSource | undefined; findings: Finding[] } {
  const findings: Finding[] = [];
  const lineCounter = new LineCounter();
  const positionAt = (offset: number): SourcePosition => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, column: Math.max(1, col) };
  };
  if (text.length > MAX_MANIFEST_FILE_BYTES) {
    findings.push(
      makeFinding(
        "yaml-limit",
        { file, line: 1, column: 1 },
        `file is larger than ${MAX_MANIFEST_FILE_BYTES} bytes`,
      ),
    );
    return { source: undefined, findings };
  }
  const composer = new Composer(COMPOSER_OPTIONS);
  let document: Document.Parsed | undefined;
  let secondDocument = false;
  try {
    for (const next of composer.compose(depthLimitedTokens(text, lineCounter), true, text.length)) {
      if (!document) {
        document = next;
      } else if (isEmptyDocument(next)) {
        // kpromo's reader (go-yaml v2) reads the first document only; an empty one after it
        // (a trailing ---, some tools write one) loses nothing, so it is only worth a warning.
        findings.push(
          makeFinding(
            "kpromo-spelling",
            positionAt(next.range[0]),
            "an empty YAML document after --- is ignored",
            { hint: "Remove the --- that starts the empty document." },
          ),
        );
      } else {
        secondDocument = true;
        findings.push(
          makeFinding(
            "yaml-syntax",
            positionAt(next.range[0]),
            "a manifest holds one YAML document; remove the second one (after ---)",
            {
              hint: "Move its entries into the first document: kpromo would silently ignore them, and this tool does not guess which document was meant.",
            },
          ),
        );
        break;
      }
    }
  } catch (error) {
    if (!(error instanceof YamlLimitError)) throw error;
    findings.push(makeFinding("yaml-limit", positionAt(error.offset), error.message));
    return { source: undefined, findings };
  }
  if (!document) {
    // compose(..., forceDoc = true) always yields one; stay safe if it does not.
    return { source: undefined, findings };
  }
  const errors = document.errors;
  for (const error of errors.slice(0, MAX_YAML_ERRORS_PER_FILE)) {
    findings.push(makeFinding("yaml-syntax", positionAt(error.pos[0]), yamlMessage(error.message)));
  }
  if (errors.length > MAX_YAML_ERRORS_PER_FILE) {
    const last = errors[MAX_YAML_ERRORS_PER_FILE];
    findings.push(
      makeFinding(
        "yaml-syntax",
        positionAt(last?.pos[0] ?? 0),
        `${errors.length - MAX_YAML_ERRORS_PER_FILE} more YAML errors in this file are not shown`,
      ),
    );
  }
  for (const warning of document.warnings.slice(0, MAX_YAML_ERRORS_PER_FILE)) {
    findings.push(makeFinding("yaml-warning", positionAt(warning.pos[0]), yamlMessage(warning.message)));
  }
  // A second document is a syntax error like any other: the whole file is not used (the first
  // document alone is not what the author wrote, and not what a reviewer of the file read).
  if (errors.length > 0 || secondDocument) return { source: undefined, findings };
  return { source: new YamlSource(file, document, lineCounter), findings };
}

/** A document with nothing but comments and markers: no value, tag or anchor. */
function isEmptyDocument(document: Document.Parsed): boolean {
  if (document.errors.length > 0 || document.warnings.length > 0) return false;
  const contents = document.contents;
  return (
    contents === null ||
    (isScalar(contents) &&
      contents.type === Scalar.PLAIN &&
      contents.source === "" &&
      contents.tag === undefined &&
      contents.anchor === undefined)
  );
}

const COMPOSER_OPTIONS = {
  schema: "failsafe",
  // Duplicate keys are reported by the manifest reader with both positions and a rule id.
  uniqueKeys: false,
  prettyErrors: false,
  version: "1.2",
} as const;

/** A line that starts an item of a top-level block sequence: `-` at column 0, then a space or the end. */
const TOP_LEVEL_ITEM = /^-(?=[ \t]|\r?\n|$)/gm;
/** Document markers and directives: a file with them is parsed whole. */
const DOCUMENT_MARKER = /^(?:(?:---|\.\.\.)(?=[ \t]|\r?\n|$)|%)/m;
/** Only blank and comment lines (and a byte-order mark) before the first item. */
const COMMENTS_ONLY = /^\uFEFF?(?:[ \t]*(?:#[^\n]*)?\r?\n)*$/;

/** One item of a top-level sequence, with the source it was parsed from. */
export interface SequenceItem {
  readonly source: YamlSource;
  readonly node: ParsedNode;
}

/**
 * Hands each item of a file whose root is a block sequence at column 0 (a thin tree's
 * images.yaml) to `read`, parsing items one at a time. Returns false, possibly after some items
 * were read, when the file does not have that simple shape or an item has a YAML error or
 * warning: the caller then drops what it read and parses the whole file.
 *
 * Why: parsing one large document keeps its whole syntax tree alive while it grows, and V8's
 * young-generation collector copies it again and again. Items parsed and read one by one die
 * young; this halves the time for the registry.k8s.io tree and cuts the memory for the 3 MB
 * legacy file. It is the same parser on exact substrings, so the nodes and (offset-shifted)
 * positions are those of the whole file. Only text where nothing can span two items
 * qualifies: a column-0 `- ` line ends every construct of the item before it unless that item
 * is unfinished (an open quote or bracket), which is a YAML error in that item and sends the
 * file down the whole-file path. Anchors and aliases (which can refer across items), document
 * markers and directives also send it there.
 */
export function readSequenceItems(text: string, file: string, read: (item: SequenceItem) => void): boolean {
  if (text.length > MAX_MANIFEST_FILE_BYTES) return false;
  if (text.includes("&") || text.includes("*") || DOCUMENT_MARKER.test(text)) return false;
  const starts: number[] = [];
  for (const match of text.matchAll(TOP_LEVEL_ITEM)) starts.push(match.index);
  const first = starts[0];
  if (first === undefined || starts.length < 2 || !COMMENTS_ONLY.test(text.slice(0, first))) return false;

  const lineCounter = new LineCounter();
  lineCounter.addNewLine(0);
  for (let newline = text.indexOf("\n"); newline >= 0; newline = text.indexOf("\n", newline + 1)) {
    lineCounter.addNewLine(newline + 1);
  }
  for (let i = 0; i < starts.length; i++) {
    const start = i === 0 ? 0 : (starts[i] ?? 0);
    const chunk = text.slice(start, starts[i + 1] ?? text.length);
    let document: Document.Parsed | undefined;
    try {
      const tokens = depthLimitedTokens(chunk, undefined);
      for (const next of new Composer(COMPOSER_OPTIONS).compose(tokens, true, chunk.length)) {
        if (document) return false;
        document = next;
      }
    } catch (error) {
      if (error instanceof YamlLimitError) return false;
      throw error;
    }
    if (!document || document.errors.length > 0 || document.warnings.length > 0) return false;
    const root = document.contents;
    if (!isSeq(root) || root.items.length !== 1) return false;
    const node = root.items[0];
    if (!node) return false;
    read({ source: new YamlSource(file, document, lineCounter, start), node });
  }
  return true;
}

/** The items of such a file as a list (for tests); undefined when the whole file must be parsed. */
export function parseSequenceItems(text: string, file: string): SequenceItem[] | undefined {
  const items: SequenceItem[] = [];
  return readSequenceItems(text, file, (item) => items.push(item)) ? items : undefined;
}

/** eemeli/yaml messages are sentences starting with a capital; ours are lower-case clauses. */
function yamlMessage(message: string): string {
  const line = escapeExcerpt(message.split("\n")[0] ?? message, MAX_YAML_MESSAGE_CHARS);
  return `YAML: ${line.charAt(0).toLowerCase()}${line.slice(1)}`;
}
