import type { Dirent } from "node:fs";
import { open, readdir, realpath, stat } from "node:fs/promises";
import * as path from "node:path";
import { runBounded } from "../concurrency/index.js";
import { AbortedError, describeErrno, errnoCode, PromoterError, UsageError } from "../errors.js";
import { makeFinding } from "./finding.js";
import type { Finding, ManifestSet, PromotionManifest } from "./model.js";
import {
  parsePlainManifest,
  parseThinManifest,
  type ManifestText,
  type ParsedPromotionManifest,
} from "./parse.js";
import { createManifestSet } from "./rules.js";
import { MAX_MANIFEST_FILE_BYTES } from "./yaml-source.js";

/**
 * Loading promotion manifests from disk: the I/O edge of the manifest layer. Reads files
 * (concurrently, in a stable order), hands the text to the pure parser and rules, and turns
 * file-system problems into `ManifestIoError`s.
 */

/** The file name kpromo looks for in `manifests/<project>/`. */
export const THIN_MANIFEST_FILE = "promoter-manifest.yaml";
/** The images file of a project: `images/<project>/images.yaml`. */
export const THIN_IMAGES_FILE = "images.yaml";
/** Files read at the same time. */
export const MAX_CONCURRENT_MANIFEST_READS = 8;
/** Directory levels searched below manifests/ for misplaced manifest files. */
export const MAX_MANIFEST_TREE_DEPTH = 8;

/** What to load: exactly one of the two, as the CLI flags `--manifest` and `--thin-manifest-dir`. */
export interface ManifestInput {
  readonly manifest?: string;
  readonly thinManifestDir?: string;
}

export interface LoadManifestOptions {
  readonly signal?: AbortSignal;
  /** Relative inputs are resolved against this directory; default `process.cwd()`. */
  readonly cwd?: string;
}

/** A manifest file or directory that is missing or cannot be read (exit status 2 in the CLI). */
export class ManifestIoError extends PromoterError {
  /** The absolute path involved. */
  readonly path: string;

  constructor(message: string, filePath: string, options?: { cause?: unknown }) {
    super("manifest-io", message, options);
    this.path = filePath;
  }
}

/** A thin-manifest tree without a single promoter-manifest.yaml. */
export class EmptyManifestTreeError extends PromoterError {
  readonly path: string;

  constructor(message: string, directory: string) {
    super("no-manifests", message);
    this.path = directory;
  }
}

/**
 * Loads a plain manifest or a thin-manifest tree and runs every rule: the returned set holds
 * all findings. Throws `ManifestIoError` when an input cannot be read, `EmptyManifestTreeError`
 * for a tree without manifests, `UsageError` unless exactly one input is given, and
 * `AbortedError` when the signal fires.
 */
export async function loadManifests(
  input: ManifestInput,
  options: LoadManifestOptions = {},
): Promise<ManifestSet> {
  const cwd = options.cwd ?? process.cwd();
  const context: LoadContext = { cwd, signal: options.signal };
  if ((input.manifest === undefined) === (input.thinManifestDir === undefined)) {
    throw new UsageError("give exactly one of a manifest file or a thin-manifest directory");
  }
  if (input.manifest !== undefined) return loadPlainManifest(path.resolve(cwd, input.manifest), context);
  return loadThinManifestTree(path.resolve(cwd, input.thinManifestDir ?? ""), context);
}

interface LoadContext {
  readonly cwd: string;
  readonly signal: AbortSignal | undefined;
}

function display(context: LoadContext, filePath: string): string {
  const relative = path.relative(context.cwd, filePath);
  return relative === "" ? "." : relative;
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError("loading manifests was aborted", { cause: signal.reason });
}

function ioError(context: LoadContext, what: string, filePath: string, error: unknown): PromoterError {
  if (error instanceof PromoterError) return error;
  if (error instanceof Error && error.name === "AbortError") {
    return new AbortedError("loading manifests was aborted", { cause: error });
  }
  return new ManifestIoError(
    `cannot read ${what} ${display(context, filePath)}: ${describeErrno(error)}`,
    filePath,
    {
      cause: error,
    },
  );
}

type ReadResult =
  | { readonly kind: "text"; readonly text: string }
  /** Not used, for the reason the finding gives (too large, not UTF-8). */
  | { readonly kind: "refused"; readonly finding: Finding };

/**
 * Reads a UTF-8 file, refusing (without reading) files above MAX_MANIFEST_FILE_BYTES and files
 * that are not UTF-8: decoding would turn bad bytes into U+FFFD silently, in a comment unseen,
 * in a tag as a baffling "character � is not allowed".
 */
async function readManifestFile(context: LoadContext, what: string, filePath: string): Promise<ReadResult> {
  checkAborted(context.signal);
  let handle;
  try {
    handle = await open(filePath, "r");
  } catch (error) {
    throw ioError(context, what, filePath, error);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) {
      throw new ManifestIoError(
        `cannot read ${what} ${display(context, filePath)}: not a regular file`,
        filePath,
      );
    }
    if (info.size > MAX_MANIFEST_FILE_BYTES) {
      return { kind: "refused", finding: tooLargeFinding(filePath, info.size) };
    }
    const bytes = await handle.readFile(context.signal ? { signal: context.signal } : {});
    try {
      return { kind: "text", text: new TextDecoder("utf-8", { fatal: true }).decode(bytes) };
    } catch {
      return { kind: "refused", finding: notUtf8Finding(filePath, bytes) };
    }
  } catch (error) {
    throw ioError(context, what, filePath, error);
  } finally {
    await handle.close();
  }
}

/** Where the first byte that is not UTF-8 is (1-based line, column in characters before it). */
function notUtf8Finding(file: string, bytes: Uint8Array): Finding {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  // The longest prefix that decodes: a binary search over cut points (UTF-8 sequences are 1-4 bytes).
  let good = 0;
  let low = 0;
  let high = bytes.length;
  while (low <= high) {
    const middle = Math.floor((low + high) / 2);
    let ok = false;
    for (let cut = middle; cut >= Math.max(0, middle - 3) && !ok; cut--) {
      try {
        decoder.decode(bytes.subarray(0, cut));
        good = Math.max(good, cut);
        ok = true;
      } catch {
        // Cut inside a sequence, or a bad byte before it.
      }
    }
    if (ok) low = middle + 1;
    else high = middle - 1;
  }
  const before = new TextDecoder().decode(bytes.subarray(0, good));
  const lines = before.split("\n");
  const line = lines.length;
  const column = (lines.at(-1) ?? "").length + 1;
  return makeFinding(
    "yaml-syntax",
    { file, line, column },
    `the file is not UTF-8 text (byte 0x${(bytes[good] ?? 0).toString(16).padStart(2, "0")} at line ${line}, column ${column}); YAML files are UTF-8`,
  );
}

function tooLargeFinding(file: string, size: number): Finding {
  return makeFinding(
    "yaml-limit",
    { file, line: 1, column: 1 },
    `file has ${size} bytes, more than the limit of ${MAX_MANIFEST_FILE_BYTES}; it was not read`,
  );
}

async function loadPlainManifest(file: string, context: LoadContext): Promise<ManifestSet> {
  const read = await readManifestFile(context, "manifest file", file);
  if (read.kind === "refused") return createManifestSet([], [read.finding]);
  const parsed = parsePlainManifest({ file, text: read.text });
  return createManifestSet(parsed.manifest ? [parsed.manifest] : [], parsed.findings);
}

interface FoundProject {
  readonly project: string;
  readonly file: string;
}

interface FoundManifests {
  /** `manifests/<project>/promoter-manifest.yaml`, by project. */
  readonly projects: FoundProject[];
  /** promoter-manifest.yaml files anywhere else below manifests/. */
  readonly misplaced: string[];
}

/**
 * Walks manifests/ following symbolic links (a link back to an ancestor is not followed twice).
 * Only files named promoter-manifest.yaml matter; everything else is ignored, as kpromo does.
 */
async function findManifestFiles(manifestsDir: string, context: LoadContext): Promise<FoundManifests> {
  const found: FoundManifests = { projects: [], misplaced: [] };
  const walk = async (directory: string, depth: number, ancestors: ReadonlySet<string>): Promise<void> => {
    checkAborted(context.signal);
    let real: string;
    let entries: Dirent[];
    try {
      real = await realpath(directory);
      entries = await readdir(directory, { withFileTypes: true });
    } catch (error) {
      throw ioError(context, "directory", directory, error);
    }
    if (ancestors.has(real)) return;
    const inside = new Set(ancestors).add(real);
    const subdirectories: string[] = [];
    for (const entry of entries) {
      const entryPath = path.join(directory, entry.name);
      let isDirectory = entry.isDirectory();
      let isFile = entry.isFile();
      if (entry.isSymbolicLink()) {
        try {
          const target = await stat(entryPath);
          isDirectory = target.isDirectory();
          isFile = target.isFile();
        } catch {
          // A dangling link is just another file that is not a manifest.
          continue;
        }
      }
      if (isFile && entry.name === THIN_MANIFEST_FILE) {
        if (depth === 1) found.projects.push({ project: path.basename(directory), file: entryPath });
        else found.misplaced.push(entryPath);
      } else if (isDirectory && depth < MAX_MANIFEST_TREE_DEPTH) {
        subdirectories.push(entryPath);
      }
    }
    await Promise.all(subdirectories.map((subdirectory) => walk(subdirectory, depth + 1, inside)));
  };
  await walk(manifestsDir, 0, new Set());
  found.projects.sort((a, b) => (a.project < b.project ? -1 : a.project > b.project ? 1 : 0));
  found.misplaced.sort();
  return found;
}

async function requireDirectory(context: LoadContext, what: string, directory: string): Promise<void> {
  let info;
  try {
    info = await stat(directory);
  } catch (error) {
    if (errnoCode(error) === "ENOENT") {
      throw new ManifestIoError(`${what} ${display(context, directory)} does not exist`, directory, {
        cause: error,
      });
    }
    throw ioError(context, what, directory, error);
  }
  if (!info.isDirectory()) {
    throw new ManifestIoError(`${what} ${display(context, directory)} is not a directory`, directory);
  }
}

async function loadThinManifestTree(root: string, context: LoadContext): Promise<ManifestSet> {
  await requireDirectory(context, "thin-manifest directory", root);
  const manifestsDir = path.join(root, "manifests");
  await requireDirectory(context, "manifests directory", manifestsDir);
  const found = await findManifestFiles(manifestsDir, context);
  if (found.projects.length === 0 && found.misplaced.length === 0) {
    throw new EmptyManifestTreeError(
      `no ${THIN_MANIFEST_FILE} found in ${display(context, manifestsDir)} (expected manifests/<project>/${THIN_MANIFEST_FILE})`,
      manifestsDir,
    );
  }
  const findings: Finding[] = found.misplaced.map((file) =>
    makeFinding(
      "misplaced-manifest",
      { file, line: 1, column: 1 },
      `${display(context, file)} is not at manifests/<project>/${THIN_MANIFEST_FILE} and is not read`,
    ),
  );

  const readProject = async ({ project, file }: FoundProject): Promise<ParsedPromotionManifest> => {
    const imagesFile = path.join(root, "images", project, THIN_IMAGES_FILE);
    const [manifestRead, imagesRead] = await Promise.all([
      readManifestFile(context, "manifest file", file),
      readImagesFile(context, imagesFile),
    ]);
    const projectFindings: Finding[] = [];
    if (manifestRead.kind === "refused") {
      projectFindings.push(manifestRead.finding);
      return { manifest: undefined, findings: projectFindings };
    }
    let images: ManifestText | undefined;
    if (imagesRead?.kind === "refused") {
      projectFindings.push(imagesRead.finding);
      images = { file: imagesFile, text: "" };
    } else if (imagesRead) {
      images = { file: imagesFile, text: imagesRead.text };
    }
    const parsed = parseThinManifest(project, { file, text: manifestRead.text }, images);
    projectFindings.push(...parsed.findings);
    return { manifest: parsed.manifest, findings: projectFindings };
  };
  const results = new Array<ParsedPromotionManifest>(found.projects.length);
  // No signal here: readManifestFile checks it and says what was aborted.
  await runBounded(found.projects, MAX_CONCURRENT_MANIFEST_READS, async (project, index) => {
    results[index] = await readProject(project);
  });

  const manifests: PromotionManifest[] = [];
  for (const result of results) {
    if (result.manifest) manifests.push(result.manifest);
    findings.push(...result.findings);
  }
  return createManifestSet(manifests, findings);
}

/** The images file, or undefined when it does not exist (a finding, not an I/O error). */
async function readImagesFile(context: LoadContext, file: string): Promise<ReadResult | undefined> {
  try {
    return await readManifestFile(context, "images file", file);
  } catch (error) {
    if (error instanceof ManifestIoError && errnoCode(error.cause) === "ENOENT") return undefined;
    throw error;
  }
}
