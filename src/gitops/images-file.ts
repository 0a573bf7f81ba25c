import {
  isMap,
  isScalar,
  isSeq,
  parseDocument,
  Scalar,
  visit,
  type Node,
  type Pair,
  type YAMLMap,
} from "yaml";
import { PromoterError } from "../errors.js";
import type { Digest, RepositoryPath, Tag } from "../reference/index.js";

/**
 * Text-level edits of a thin tree's `images/<project>/images.yaml`. The file is parsed only to
 * learn where things are (node ranges of eemeli/yaml); the edit is a handful of insertions into
 * the original text, so every comment, blank line, quoting style (flow `["a"]` or block `- a`
 * lists, quoted or plain digests) and the order of untouched entries stay byte for byte, and
 * `git diff` shows only the lines that were added (or, when a tag joins an existing flow list,
 * that one line). New text copies the style of its neighbours. Pure: text in, text out.
 */

/** Something to make true in the file: `image` lists `digest` with (at least) `tags`. */
export interface ImagesFileAddition {
  readonly image: RepositoryPath;
  readonly digest: Digest;
  /** Tags to add; empty to list the digest without a tag. */
  readonly tags: readonly Tag[];
}

/** What an addition changed; nothing when everything was already there. */
export interface ImagesFileChange {
  readonly image: RepositoryPath;
  readonly digest: Digest;
  /** Tags that were not listed before (in the order asked for). */
  readonly addedTags: readonly Tag[];
  /** The digest was not listed for the image before. */
  readonly addedDigest: boolean;
  /** The image had no entry before: a new `- name:` entry was written. */
  readonly addedImage: boolean;
  /** 1-based line of the added text in the result. */
  readonly line: number;
}

export interface ImagesFileEdit {
  readonly text: string;
  /** One per addition that changed something. */
  readonly changes: readonly ImagesFileChange[];
}

/** The file has a shape these edits do not handle (they refuse rather than guess). */
export class ImagesFileEditError extends PromoterError {
  readonly file: string;
  constructor(file: string, message: string) {
    super("images-file-edit", `${file}: ${message}`);
    this.file = file;
  }
}

type Style = Scalar.Type;

interface TagLayout {
  readonly value: string;
  readonly node: Scalar;
}

interface DigestLayout {
  readonly digest: string;
  readonly key: Scalar;
  /** The tag list node: a flow or block sequence, or a null scalar (empty value, `~`, `null`). */
  readonly value: Node;
  readonly tags: readonly TagLayout[];
}

interface EntryLayout {
  readonly name: string;
  readonly map: YAMLMap;
  /** The `dmap` pair, if the entry has one. */
  readonly dmapPair: Pair | undefined;
  /** The dmap value: a mapping, or undefined for `dmap:` with no value. */
  readonly dmap: YAMLMap | undefined;
  readonly digests: readonly DigestLayout[];
}

/** An entry whose name is known; its nodes are parsed when an edit needs them. */
interface EntrySlot {
  readonly name: string;
  /** Offset of the line that starts the entry (`- name: ...`). */
  readonly start: number;
  layout(): EntryLayout;
}

interface FileLayout {
  readonly text: string;
  readonly file: string;
  readonly eol: string;
  readonly entries: readonly EntrySlot[];
}

/** Entries, and digests, the file-wide style is learnt from. */
const STYLE_SAMPLE_ENTRIES = 20;
const STYLE_SAMPLE_DIGESTS = 50;

const PARSE_OPTIONS = { schema: "failsafe", uniqueKeys: false, version: "1.2" } as const;

// YAML 1.2 core-schema null spellings: a plain tag spelt like this would read as nothing.
const NULL_SPELLINGS = new Set(["", "~", "null", "Null", "NULL"]);

function nodeStart(node: Node): number {
  return node.range?.[0] ?? 0;
}

/** End of the node's value (before trailing comments and whitespace). */
function nodeEnd(node: Node): number {
  return node.range?.[1] ?? 0;
}

function isNullNode(node: unknown): boolean {
  return (
    node === null ||
    node === undefined ||
    (isScalar(node) &&
      (node.value === null ||
        (node.type === Scalar.PLAIN && typeof node.value === "string" && NULL_SPELLINGS.has(node.value))))
  );
}

function scalarText(node: unknown): string | undefined {
  return isScalar(node) && !isNullNode(node) ? String(node.value) : undefined;
}

/** The nodes of one image entry (a block mapping), read for editing. */
function entryLayout(item: unknown, file: string): EntryLayout {
  if (!isMap(item) || item.flow) {
    throw new ImagesFileEditError(file, "every image entry must be a block mapping with name and dmap");
  }
  let name: string | undefined;
  let dmapPair: Pair | undefined;
  for (const pair of item.items) {
    const key = scalarText(pair.key);
    if (key === "name") name = scalarText(pair.value);
    else if (key === "dmap" && dmapPair === undefined) dmapPair = pair;
  }
  // An entry without a usable name is a validation error elsewhere; it is never edited.
  if (name === undefined) return { name: "", map: item, dmapPair: undefined, dmap: undefined, digests: [] };
  const dmapValue = dmapPair?.value;
  let dmap: YAMLMap | undefined;
  const digests: DigestLayout[] = [];
  if (dmapPair !== undefined && !isNullNode(dmapValue)) {
    if (!isMap(dmapValue)) {
      throw new ImagesFileEditError(file, `the dmap of image ${JSON.stringify(name)} is not a mapping`);
    }
    dmap = dmapValue;
    for (const pair of dmapValue.items) {
      const digest = scalarText(pair.key);
      const value = (pair.value ?? null) as Node | null;
      if (digest === undefined || !isScalar(pair.key) || value === null) continue;
      const tags: TagLayout[] = [];
      if (isSeq(value)) {
        for (const tag of value.items) {
          const tagText = scalarText(tag);
          if (tagText !== undefined && isScalar(tag)) tags.push({ value: tagText, node: tag });
        }
      } else if (!isNullNode(value)) {
        continue;
      }
      digests.push({ digest, key: pair.key, value, tags });
    }
  }
  return { name, map: item, dmapPair, dmap, digests };
}

function syntaxError(
  file: string,
  document: { errors: readonly { message: string }[] },
): ImagesFileEditError {
  const first = document.errors[0];
  return new ImagesFileEditError(
    file,
    `the file is not valid YAML (${first?.message.split("\n")[0] ?? "parse error"}); fix it first`,
  );
}

/** Reads where things are; throws ImagesFileEditError for shapes these edits do not handle. */
function readLayout(text: string, file: string): FileLayout {
  const eol = text.includes("\r\n") ? "\r\n" : "\n";
  return { text, file, eol, entries: entriesItemByItem(text, file) ?? entriesOfDocument(text, file) };
}

function entriesOfDocument(text: string, file: string): EntrySlot[] {
  const document = parseDocument(text, PARSE_OPTIONS);
  if (document.errors.length > 0) throw syntaxError(file, document);
  const root = document.contents;
  if (isNullNode(root)) return [];
  if (!isSeq(root) || root.flow) {
    throw new ImagesFileEditError(file, "the file must be a block list of images (`- name: ...`)");
  }
  return root.items.map((item) => {
    const layout = entryLayout(item, file);
    return { name: layout.name, start: lineStart(text, nodeStart(layout.map)), layout: () => layout };
  });
}

/** A line that starts an item of a top-level block sequence. */
const TOP_LEVEL_ITEM = /^-(?=[ \t]|\r?\n|$)/gm;
/** Document markers and directives: such files are parsed whole. */
const DOCUMENT_MARKER = /^(?:(?:---|\.\.\.)(?=[ \t]|\r?\n|$)|%)/m;
/** Only blank and comment lines (and a byte-order mark) before the first item. */
const COMMENTS_ONLY = /^\uFEFF?(?:[ \t]*(?:#[^\n]*)?\r?\n)*$/;
/**
 * `- name: foo` (plain or double-quoted, in the repository grammar's characters), followed by a
 * line that starts another key of the entry at column 2: then the name is exactly what YAML
 * reads (a continuation line of a multi-line scalar would be indented further).
 */
const NAME_LINE =
  /^- name: (?:([a-z0-9][a-z0-9._/-]*)|"([a-z0-9][a-z0-9._/-]*)")[ \t]*(?:#[^\n]*)?\r?\n {2}[a-z]/;
/** How much of an entry the name pattern looks at. */
const NAME_LINE_WINDOW = 400;

/**
 * The entries of a file whose root is a block sequence at column 0, each parsed only when an
 * edit needs it, so that adding to the 1 MB kubernetes file costs milliseconds, not a second.
 * Undefined when the file has another shape (it is then parsed whole). Each item is parsed on
 * its own exact substring, as the manifest reader does (src/manifest/yaml-source.ts says why
 * that is the same parse), and node ranges are shifted to file offsets.
 */
function entriesItemByItem(text: string, file: string): EntrySlot[] | undefined {
  if (text.includes("&") || text.includes("*") || DOCUMENT_MARKER.test(text)) return undefined;
  const starts = [...text.matchAll(TOP_LEVEL_ITEM)].map((match) => match.index);
  const first = starts[0];
  if (first === undefined || !COMMENTS_ONLY.test(text.slice(0, first))) return undefined;
  const parseItem = (start: number, end: number): EntryLayout | undefined => {
    const document = parseDocument(text.slice(start, end), PARSE_OPTIONS);
    const root = document.contents;
    if (document.errors.length > 0 || !isSeq(root) || root.items.length !== 1) return undefined;
    visit(document, {
      Node(_key, node) {
        if (node.range) node.range = [node.range[0] + start, node.range[1] + start, node.range[2] + start];
      },
    });
    return entryLayout(root.items[0], file);
  };
  const slots: EntrySlot[] = [];
  for (const [i, start] of starts.entries()) {
    const end = starts[i + 1] ?? text.length;
    const match = NAME_LINE.exec(text.slice(start, Math.min(end, start + NAME_LINE_WINDOW)));
    let parsed: EntryLayout | undefined;
    let name = match?.[1] ?? match?.[2];
    if (name === undefined) {
      parsed = parseItem(start, end);
      // An item that does not parse alone: the whole file decides (and reports the error).
      if (!parsed) return undefined;
      name = parsed.name;
    }
    slots.push({
      name,
      start,
      layout: () => {
        parsed ??= parseItem(start, end);
        if (!parsed)
          throw new ImagesFileEditError(
            file,
            `the entry at line ${lineNumberAt(text, start)} does not parse`,
          );
        return parsed;
      },
    });
  }
  return slots;
}

function lineStart(text: string, offset: number): number {
  return text.lastIndexOf("\n", offset - 1) + 1;
}

/** Offset just after the newline that ends the line holding `offset` (or the end of the text). */
function afterLine(text: string, offset: number): number {
  const newline = text.indexOf("\n", offset);
  return newline < 0 ? text.length : newline + 1;
}

function columnOf(text: string, offset: number): number {
  return offset - lineStart(text, offset);
}

function lineNumberAt(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf("\n"); i >= 0 && i < offset; i = text.indexOf("\n", i + 1)) line += 1;
  return line;
}

function formatScalar(value: string, style: Style | undefined): string {
  if (style === Scalar.QUOTE_SINGLE) return `'${value.replace(/'/g, "''")}'`;
  if (style === Scalar.PLAIN && !NULL_SPELLINGS.has(value)) return value;
  return JSON.stringify(value);
}

/** Styles that new text copies: from the same list or mapping first, then the file, then kpromo's. */
interface StyleHints {
  readonly digestKey: Style | undefined;
  readonly tag: Style | undefined;
  /** A flow list like `[ "a" ]` pads inside the brackets. */
  readonly flowPadding: string;
  readonly flowSeparator: string;
  /** Block lists for tags (`- v1` lines) instead of flow lists. */
  readonly blockTags: boolean;
  /** Text before a block tag item: e.g. `    - `, relative to the digest key's column. */
  readonly blockItemIndent: number;
  readonly blockItemMarker: string;
}

const DEFAULT_HINTS: StyleHints = {
  digestKey: Scalar.QUOTE_DOUBLE,
  tag: Scalar.QUOTE_DOUBLE,
  flowPadding: "",
  flowSeparator: ", ",
  blockTags: false,
  blockItemIndent: 0,
  blockItemMarker: "- ",
};

function hintsFrom(layout: FileLayout, digests: readonly DigestLayout[], base: StyleHints): StyleHints {
  const text = layout.text;
  let digestKey: Style | undefined;
  let tag: Style | undefined;
  let flow: { padding: string; separator: string } | undefined;
  let block: { indent: number; marker: string } | undefined;
  let nearestTagged: "flow" | "block" | undefined;
  for (const entry of digests) {
    digestKey ??= entry.key.type;
    const lastTag = entry.tags[entry.tags.length - 1];
    if (lastTag) tag ??= lastTag.node.type;
    const value = entry.value;
    if (isSeq(value) && value.flow) {
      if (entry.tags.length > 0) nearestTagged ??= "flow";
      if (!flow && entry.tags.length > 0) {
        const open = nodeStart(value);
        const first = entry.tags[0];
        const second = entry.tags[1];
        flow = {
          padding: first ? text.slice(open + 1, nodeStart(first.node)) : "",
          separator:
            first && second ? text.slice(nodeEnd(first.node), nodeStart(second.node)) : base.flowSeparator,
        };
        if (!/^[ ]*$/.test(flow.padding)) flow.padding = "";
        if (!/^,[ ]*$/.test(flow.separator)) flow.separator = ", ";
      }
    } else if (isSeq(value) && entry.tags.length > 0) {
      nearestTagged ??= "block";
      if (!block) {
        const first = entry.tags[0];
        if (first) {
          const itemLine = lineStart(text, nodeStart(first.node));
          const prefix = text.slice(itemLine, nodeStart(first.node));
          const match = /^( *)(- +)$/.exec(prefix);
          if (match) {
            block = {
              indent: (match[1] ?? "").length - columnOf(text, nodeStart(entry.key)),
              marker: match[2] ?? "- ",
            };
          }
        }
      }
    }
  }
  return {
    digestKey: digestKey ?? base.digestKey,
    tag: tag ?? base.tag,
    flowPadding: flow?.padding ?? base.flowPadding,
    flowSeparator: flow?.separator ?? base.flowSeparator,
    blockTags:
      nearestTagged === undefined ? base.blockTags : nearestTagged === "block" && block !== undefined,
    blockItemIndent: block?.indent ?? base.blockItemIndent,
    blockItemMarker: block?.marker ?? base.blockItemMarker,
  };
}

/** The file's first entries speak for its style (most files are written by one hand or tool). */
function fileHints(layout: FileLayout): StyleHints {
  const sample: DigestLayout[] = [];
  for (const slot of layout.entries.slice(0, STYLE_SAMPLE_ENTRIES)) {
    sample.push(...slot.layout().digests);
    if (sample.length >= STYLE_SAMPLE_DIGESTS) break;
  }
  const hints = hintsFrom(layout, sample, DEFAULT_HINTS);
  // Block lists are a file-wide choice only when the sample has no flow lists with tags.
  const usesFlow = sample.some((entry) => isSeq(entry.value) && entry.value.flow && entry.tags.length > 0);
  return { ...hints, blockTags: hints.blockTags && !usesFlow };
}

interface Edit {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

/** `KEY: VALUE` lines for a new digest, starting at `column`, each line ending with eol. */
function digestLines(
  digest: string,
  tags: readonly string[],
  column: number,
  hints: StyleHints,
  eol: string,
): string {
  const indent = " ".repeat(column);
  const key = formatScalar(digest, hints.digestKey);
  if (tags.length === 0) return `${indent}${key}: []${eol}`;
  if (hints.blockTags) {
    const itemIndent = " ".repeat(Math.max(0, column + hints.blockItemIndent));
    const items = tags.map(
      (tag) => `${itemIndent}${hints.blockItemMarker}${formatScalar(tag, hints.tag)}${eol}`,
    );
    return `${indent}${key}:${eol}${items.join("")}`;
  }
  return `${indent}${key}: ${flowList(tags, hints)}${eol}`;
}

function flowList(tags: readonly string[], hints: StyleHints): string {
  const items = tags.map((tag) => formatScalar(tag, hints.tag)).join(hints.flowSeparator);
  return `[${hints.flowPadding}${items}${hints.flowPadding}]`;
}

/**
 * The offset just after the last character a node was written with: the closing bracket or
 * quote, the last item of a block collection, the key of a pair whose value is empty. Trailing
 * comments and line breaks are not part of it (eemeli/yaml counts them in `range[2]`, and for
 * block collections sometimes in `range[1]`).
 */
function contentEnd(node: Node): number {
  if ((isSeq(node) || isMap(node)) && !node.flow) {
    const last = node.items[node.items.length - 1];
    if (last === undefined) return nodeEnd(node);
    if (isSeq(node)) return contentEnd(last as Node);
    return pairEnd(last as Pair);
  }
  return nodeEnd(node);
}

function pairEnd(pair: Pair): number {
  const value = pair.value as Node | null;
  if (value && nodeEnd(value) > nodeStart(value)) return contentEnd(value);
  return contentEnd(pair.key as Node);
}

/** Where a new line goes after the line that holds `end` (a content end); adds a final newline if missing. */
function lineInsertion(text: string, end: number, eol: string): { at: number; prefix: string } {
  const at = afterLine(text, Math.max(0, end - 1));
  const needsNewline = at === text.length && text.length > 0 && !text.endsWith("\n");
  return { at, prefix: needsNewline ? eol : "" };
}

function addTagsEdit(
  layout: FileLayout,
  entry: EntryLayout,
  target: DigestLayout,
  tags: readonly string[],
): Edit {
  const text = layout.text;
  const hints = hintsFrom(layout, [target, ...entry.digests], fileHints(layout));
  const value = target.value;
  if (isSeq(value) && value.flow) {
    const last = target.tags[target.tags.length - 1];
    if (last) {
      const separator = target.tags.length > 1 ? hints.flowSeparator : ", ";
      const items = tags
        .map((tag) => `${separator}${formatScalar(tag, last.node.type ?? hints.tag)}`)
        .join("");
      const at = nodeEnd(last.node);
      return { start: at, end: at, text: items };
    }
    // `[]` or `[ ]`: the new tags go right after the bracket.
    const open = nodeStart(value);
    const close = text.indexOf("]", open);
    return {
      start: open + 1,
      end: close < 0 ? open + 1 : close,
      text: tags.map((tag) => formatScalar(tag, hints.tag)).join(hints.flowSeparator),
    };
  }
  if (isSeq(value)) {
    const first = target.tags[0];
    const last = target.tags[target.tags.length - 1];
    if (!first || !last) {
      throw new ImagesFileEditError(layout.file, `the tag list of ${target.digest} has no items to follow`);
    }
    const itemLineStart = lineStart(text, nodeStart(last.node));
    const prefix = text.slice(itemLineStart, nodeStart(last.node));
    if (!/^ *- +$/.test(prefix)) {
      throw new ImagesFileEditError(
        layout.file,
        `the tag list of ${target.digest} has an unusual layout; add the tag by hand`,
      );
    }
    const style = last.node.type ?? hints.tag;
    const { at, prefix: newline } = lineInsertion(text, contentEnd(last.node), layout.eol);
    const lines = tags.map((tag) => `${prefix}${formatScalar(tag, style)}${layout.eol}`).join("");
    return { start: at, end: at, text: `${newline}${lines}` };
  }
  // A null value: `"sha256:…":` (empty), `~` or `null`. The list replaces it on the same line.
  const start = nodeStart(value);
  const end = nodeEnd(value);
  const list = flowList(tags, { ...hints, flowPadding: hints.flowPadding });
  if (start === end) return { start, end, text: ` ${list}` };
  return { start, end, text: list };
}

function addDigestEdit(
  layout: FileLayout,
  entry: EntryLayout,
  digest: string,
  tags: readonly string[],
): Edit {
  const text = layout.text;
  const hints = hintsFrom(layout, [...entry.digests].reverse(), fileHints(layout));
  const dmap = entry.dmap;
  if (dmap?.flow) {
    const pairs = dmap.items;
    const key = formatScalar(digest, hints.digestKey);
    const value = flowList(tags, hints);
    const lastPair = pairs[pairs.length - 1];
    const lastNode = (lastPair?.value ?? lastPair?.key) as Node | undefined;
    if (lastNode) {
      const at = nodeEnd(lastNode);
      return { start: at, end: at, text: `, ${key}: ${value}` };
    }
    const open = nodeStart(dmap);
    return { start: open + 1, end: open + 1, text: `${key}: ${value}` };
  }
  if (dmap && entry.digests.length > 0) {
    const last = entry.digests[entry.digests.length - 1];
    if (!last) throw new ImagesFileEditError(layout.file, "internal: no last digest");
    const column = columnOf(text, nodeStart(last.key));
    const lastPair = dmap.items[dmap.items.length - 1];
    const end = lastPair ? pairEnd(lastPair) : contentEnd(last.value);
    const { at, prefix } = lineInsertion(text, end, layout.eol);
    return { start: at, end: at, text: `${prefix}${digestLines(digest, tags, column, hints, layout.eol)}` };
  }
  // A dmap with no digests yet (`dmap:`, `dmap: ~`), or no dmap at all.
  const keyColumn = columnOf(text, nodeStart(entry.map));
  const pairColumn = keyColumn + pairIndentOf(layout);
  const pairText = digestLines(digest, tags, pairColumn, hints, layout.eol);
  if (entry.dmapPair && isScalar(entry.dmapPair.key)) {
    const value = entry.dmapPair.value as Node | null;
    const keyEnd = nodeEnd(entry.dmapPair.key);
    if (value && nodeEnd(value) > nodeStart(value)) {
      // `dmap: ~` or `dmap: null`: the null goes, the digest follows on its own line.
      const colon = text.indexOf(":", keyEnd);
      return { start: colon + 1, end: afterLine(text, nodeEnd(value)), text: `${layout.eol}${pairText}` };
    }
    const { at, prefix } = lineInsertion(text, keyEnd, layout.eol);
    return { start: at, end: at, text: `${prefix}${pairText}` };
  }
  const { at, prefix } = lineInsertion(text, contentEnd(entry.map), layout.eol);
  return {
    start: at,
    end: at,
    text: `${prefix}${" ".repeat(keyColumn)}dmap:${layout.eol}${pairText}`,
  };
}

/** Columns from an entry's keys to its dmap's digests (2 in every known file). */
function pairIndentOf(layout: FileLayout): number {
  for (const slot of layout.entries.slice(0, STYLE_SAMPLE_ENTRIES)) {
    const entry = slot.layout();
    const first = entry.digests[0];
    if (entry.dmap && !entry.dmap.flow && first) {
      const indent =
        columnOf(layout.text, nodeStart(first.key)) - columnOf(layout.text, nodeStart(entry.map));
      if (indent > 0) return indent;
    }
  }
  return 2;
}

function addImageEdit(layout: FileLayout, image: string, digest: string, tags: readonly string[]): Edit {
  const text = layout.text;
  const eol = layout.eol;
  const hints = fileHints(layout);
  const first = layout.entries[0]?.layout();
  let itemPrefix = "- ";
  let keyColumn = 2;
  let nameStyle: Style | undefined = Scalar.PLAIN;
  if (first) {
    const mapStart = nodeStart(first.map);
    const prefix = text.slice(lineStart(text, mapStart), mapStart);
    if (/^ *- +$/.test(prefix)) itemPrefix = prefix;
    keyColumn = columnOf(text, mapStart);
    const namePair = first.map.items.find((pair) => scalarText(pair.key) === "name");
    if (namePair && isScalar(namePair.value)) nameStyle = namePair.value.type;
  }
  const keyIndent = " ".repeat(keyColumn);
  const entryText =
    `${itemPrefix}name: ${formatScalar(image, nameStyle)}${eol}` +
    `${keyIndent}dmap:${eol}` +
    digestLines(digest, tags, keyColumn + pairIndentOf(layout), hints, eol);

  // In a file sorted by image name the entry goes where it belongs, above the comment lines
  // that introduce the next entry; anywhere else it goes at the end.
  const names = layout.entries.map((entry) => entry.name);
  const sorted = names.every((name, i) => i === 0 || (names[i - 1] ?? "") <= name);
  if (sorted) {
    const next = layout.entries.find((entry) => entry.name > image);
    if (next) {
      let at = next.start;
      for (;;) {
        const previousStart = lineStart(text, at - 1);
        if (at === 0 || !/^[ \t]*#/.test(text.slice(previousStart, at))) break;
        at = previousStart;
      }
      return { start: at, end: at, text: entryText };
    }
  }
  const prefix = text.length > 0 && !text.endsWith("\n") ? eol : "";
  return { start: text.length, end: text.length, text: `${prefix}${entryText}` };
}

function applyEdit(text: string, edit: Edit): string {
  return `${text.slice(0, edit.start)}${edit.text}${text.slice(edit.end)}`;
}

/**
 * Adds digests and tags to an images file. Each addition goes to the first entry of its image
 * that already lists the digest, else to the first entry of the image, else to a new entry.
 * Tags already listed for the image and digest (in any entry) are not added again, so a second
 * identical call changes nothing. Refusing tag conflicts and `latest` is the caller's job.
 */
export function addToImagesFile(
  text: string,
  file: string,
  additions: readonly ImagesFileAddition[],
): ImagesFileEdit {
  let current = text;
  let layout = readLayout(current, file);
  const changes: ImagesFileChange[] = [];
  for (const addition of additions) {
    const entries = layout.entries
      .filter((slot) => slot.name === addition.image)
      .map((slot) => slot.layout());
    const listed = new Set<string>();
    let holder: { entry: EntryLayout; digest: DigestLayout } | undefined;
    for (const entry of entries) {
      for (const digest of entry.digests) {
        if (digest.digest !== addition.digest) continue;
        holder ??= { entry, digest };
        for (const tag of digest.tags) listed.add(tag.value);
      }
    }
    const missing = [...new Set(addition.tags)].filter((tag) => !listed.has(tag));
    let edit: Edit;
    if (holder) {
      if (missing.length === 0) continue;
      edit = addTagsEdit(layout, holder.entry, holder.digest, missing);
    } else if (entries[0]) {
      edit = addDigestEdit(layout, entries[0], addition.digest, missing);
    } else {
      edit = addImageEdit(layout, addition.image, addition.digest, missing);
    }
    current = applyEdit(current, edit);
    const eol = layout.eol;
    layout = readLayout(current, file);
    changes.push({
      image: addition.image,
      digest: addition.digest,
      addedTags: missing,
      addedDigest: holder === undefined,
      addedImage: entries.length === 0,
      line: lineNumberAt(current, edit.start + (edit.text.startsWith(eol) ? eol.length : 0)),
    });
  }
  return { text: current, changes };
}

/**
 * Checks that every entry of a file has a shape these edits handle, and that the fast
 * item-by-item reading finds the same entries (names and places) as parsing the whole file.
 * Changes nothing; the real-tree tests run it on every images.yaml.
 */
export function checkImagesFileEditable(text: string, file: string): void {
  const whole = entriesOfDocument(text, file);
  const fast = entriesItemByItem(text, file);
  if (!fast) return;
  const disagree =
    fast.length !== whole.length ||
    fast.some((slot, i) => {
      const other = whole[i];
      return slot.name !== other?.name || slot.start !== other.start;
    });
  if (disagree) {
    throw new ImagesFileEditError(file, "reading entry by entry disagrees with reading the whole file");
  }
}
