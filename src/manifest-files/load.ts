import type { Dirent } from "node:fs";
import { lstat, readdir, realpath, stat } from "node:fs/promises";
import * as path from "node:path";
import { runBounded } from "../concurrency/index.js";
import { AbortedError, describeErrno, errnoCode, PromoterError, UsageError } from "../errors.js";
import { escapeExcerpt } from "../excerpt.js";
import {
  createManifestSet,
  makeFinding,
  MAX_MANIFEST_FILE_BYTES,
  parsePlainManifest,
  parseThinManifest,
  type Finding,
  type ManifestSet,
  type ManifestSetOptions,
  type ManifestText,
  type ParsedPromotionManifest,
  type PromotionManifest,
  type RegistryPolicy,
} from "../manifest/index.js";
import { realDirectory } from "./real-directory.js";
import {
  describeTreeFileRefusal,
  entryKind,
  ManifestTree,
  type TreeEntryKind,
  type TreeFileRefusal,
} from "./tree-files.js";

/**
 * Loading promotion manifests from disk: the I/O edge of the manifest layer. Reads files
 * (concurrently, in a stable order) only from inside the tree the user named (tree-files.ts),
 * hands the text to the pure parser and rules, and turns file-system problems into
 * `ManifestIoError`s and refused files into `refused-file` findings.
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
  /** Which registries the manifests may name (see registry-policy.ts and `loadRegistryPolicy`). */
  readonly registryPolicy?: RegistryPolicy;
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
  const context: LoadContext = {
    cwd,
    signal: options.signal,
    setOptions: {
      realDirectory,
      ...(options.registryPolicy ? { registryPolicy: options.registryPolicy } : {}),
    },
  };
  if ((input.manifest === undefined) === (input.thinManifestDir === undefined)) {
    throw new UsageError("give exactly one of a manifest file or a thin-manifest directory");
  }
  if (input.manifest !== undefined) return loadPlainManifest(path.resolve(cwd, input.manifest), context);
  return loadThinManifestTree(path.resolve(cwd, input.thinManifestDir ?? ""), context);
}

/**
 * The tree the files of `input` are read from (tree-files.ts): the thin-manifest directory, or
 * the folder that holds the plain manifest. Throws the file system's error when it does not resolve.
 */
export async function manifestTreeOf(input: ManifestInput, cwd: string): Promise<ManifestTree> {
  if (input.manifest !== undefined) return ManifestTree.at(path.dirname(path.resolve(cwd, input.manifest)));
  return ManifestTree.at(path.resolve(cwd, input.thinManifestDir ?? ""));
}

interface LoadContext {
  readonly cwd: string;
  readonly signal: AbortSignal | undefined;
  readonly setOptions: ManifestSetOptions;
}

/** A path for a message, relative to the working directory, with unsafe characters escaped. */
function display(context: LoadContext, filePath: string): string {
  const relative = path.relative(context.cwd, filePath);
  return relative === "" ? "." : escapeExcerpt(relative);
}

/** What the files of a tree must stay inside, for messages. */
const THIN_TREE = "the manifest tree";
const PLAIN_MANIFEST_FOLDER = "the folder of the manifest file";

/** A refused file of a tree as a finding at its path (its content is never read or shown). */
function refusedFileFinding(file: string, refusal: TreeFileRefusal, tree: string): Finding {
  const position = { file, line: 1, column: 1 };
  if (refusal.reason === "too-large") return tooLargeFinding(file, refusal.size);
  return makeFinding("refused-file", position, describeTreeFileRefusal(refusal, tree, "read"));
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
  /** Not used, for the reason the finding gives (refused by the tree, too large, not UTF-8). */
  | { readonly kind: "refused"; readonly finding: Finding; readonly refusal?: TreeFileRefusal };

/**
 * Reads a UTF-8 file of `tree` (`where` names the tree in messages), refusing without reading
 * what the tree refuses (links out of it, FIFOs, devices, folders, files above
 * MAX_MANIFEST_FILE_BYTES) and files that are not UTF-8: decoding would turn bad bytes into
 * U+FFFD silently, in a comment unseen, in a tag as a baffling "character � is not allowed".
 */
async function readManifestFile(
  context: LoadContext,
  tree: ManifestTree,
  where: string,
  what: string,
  filePath: string,
): Promise<ReadResult> {
  checkAborted(context.signal);
  let read;
  try {
    read = await tree.read(filePath, {
      maxBytes: MAX_MANIFEST_FILE_BYTES,
      ...(context.signal ? { signal: context.signal } : {}),
    });
  } catch (error) {
    throw ioError(context, what, filePath, error);
  }
  if (read.kind === "refused") {
    return {
      kind: "refused",
      finding: refusedFileFinding(filePath, read.refusal, where),
      refusal: read.refusal,
    };
  }
  try {
    return { kind: "text", text: new TextDecoder("utf-8", { fatal: true }).decode(read.bytes) };
  } catch {
    return { kind: "refused", finding: notUtf8Finding(filePath, read.bytes) };
  }
}

/**
 * Reads another file of a manifest tree (the registry policy) as manifest files are read: the
 * same size cap and UTF-8 check, refusals as a finding. Undefined when the file does not exist.
 */
export async function readTreeFile(
  treeRoot: string,
  file: string,
  options: { readonly cwd: string; readonly signal?: AbortSignal | undefined },
): Promise<{ readonly text: string } | { readonly finding: Finding } | undefined> {
  const context: LoadContext = { cwd: options.cwd, signal: options.signal, setOptions: {} };
  let tree: ManifestTree;
  try {
    tree = await ManifestTree.at(treeRoot);
  } catch (error) {
    // A missing tree is reported where the manifests are loaded, with the rest of the input.
    if (errnoCode(error) === "ENOENT" || errnoCode(error) === "ENOTDIR") return undefined;
    throw ioError(context, "manifest tree", treeRoot, error);
  }
  try {
    const read = await readManifestFile(context, tree, THIN_TREE, "file", file);
    return read.kind === "text" ? { text: read.text } : { finding: read.finding };
  } catch (error) {
    if (error instanceof ManifestIoError && errnoCode(error.cause) === "ENOENT") return undefined;
    throw error;
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

/**
 * A plain manifest is its own tree: the folder that holds it, as named. The file itself may be a
 * link that stays in that folder (a Kubernetes ConfigMap mount is one).
 */
async function loadPlainManifest(file: string, context: LoadContext): Promise<ManifestSet> {
  let tree: ManifestTree;
  try {
    tree = await manifestTreeOf({ manifest: file }, context.cwd);
  } catch (error) {
    throw ioError(context, "manifest file", file, error);
  }
  const read = await readManifestFile(context, tree, PLAIN_MANIFEST_FOLDER, "manifest file", file);
  if (read.kind === "refused" && read.refusal?.reason === "not-a-file") {
    // The path the user named is the wrong kind of thing: an input error, as a missing file is.
    throw new ManifestIoError(
      `cannot read manifest file ${display(context, file)}: not a regular file (a ${read.refusal.kind})`,
      file,
    );
  }
  if (read.kind === "refused") return createManifestSet([], [read.finding], context.setOptions);
  const parsed = parsePlainManifest({ file, text: read.text });
  return createManifestSet(parsed.manifest ? [parsed.manifest] : [], parsed.findings, context.setOptions);
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
  /** Entries that would have been searched or read but are refused (links out, not files). */
  readonly refused: Finding[];
}

/** What a directory entry is, following a link that stays inside the tree; undefined when dangling. */
async function kindInTree(
  tree: ManifestTree,
  entry: Dirent,
  entryPath: string,
): Promise<TreeEntryKind | "outside" | undefined> {
  if (!entry.isSymbolicLink()) return entryKind(entry);
  let located;
  try {
    located = await tree.locate(entryPath);
  } catch {
    // A dangling link is just another file that is not a manifest.
    return undefined;
  }
  if (!located.inside) return "outside";
  return entryKind(await lstat(located.real));
}

/**
 * Walks manifests/ following symbolic links that stay inside the tree (a link back to an
 * ancestor is not followed twice). Only files named promoter-manifest.yaml matter; everything
 * else is ignored, as kpromo does. A link out of the tree where a folder to search or a manifest
 * would be, and a promoter-manifest.yaml that is not a regular file, are refused with a finding.
 */
async function findManifestFiles(
  manifestsDir: string,
  tree: ManifestTree,
  context: LoadContext,
): Promise<FoundManifests> {
  const found: FoundManifests = { projects: [], misplaced: [], refused: [] };
  const refuse = (file: string, refusal: TreeFileRefusal): void => {
    found.refused.push(refusedFileFinding(file, refusal, THIN_TREE));
  };
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
      let kind;
      try {
        kind = await kindInTree(tree, entry, entryPath);
      } catch (error) {
        throw ioError(context, "directory", entryPath, error);
      }
      if (kind === undefined) continue;
      const isManifest = entry.name === THIN_MANIFEST_FILE;
      if (kind === "outside") {
        // Other links out (a README shared with the repository) are never read, so not refused.
        const searched =
          isManifest ||
          (await stat(entryPath).then(
            (info) => info.isDirectory(),
            () => false,
          ));
        if (searched) refuse(entryPath, { reason: "outside-tree" });
      } else if (isManifest && kind !== "file") {
        refuse(entryPath, { reason: "not-a-file", kind });
      } else if (isManifest) {
        if (depth === 1) found.projects.push({ project: path.basename(directory), file: entryPath });
        else found.misplaced.push(entryPath);
      } else if (kind === "directory" && depth < MAX_MANIFEST_TREE_DEPTH) {
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
  let tree: ManifestTree;
  try {
    tree = await manifestTreeOf({ thinManifestDir: root }, context.cwd);
  } catch (error) {
    throw ioError(context, "thin-manifest directory", root, error);
  }
  const manifestsDir = path.join(root, "manifests");
  await requireDirectory(context, "manifests directory", manifestsDir);
  let manifestsLocation;
  try {
    manifestsLocation = await tree.locate(manifestsDir);
  } catch (error) {
    throw ioError(context, "manifests directory", manifestsDir, error);
  }
  if (!manifestsLocation.inside) {
    return createManifestSet([], [refusedFileFinding(manifestsDir, { reason: "outside-tree" }, THIN_TREE)]);
  }
  const found = await findManifestFiles(manifestsDir, tree, context);
  if (found.projects.length === 0 && found.misplaced.length === 0 && found.refused.length === 0) {
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
  findings.push(...found.refused);

  const readProject = async ({ project, file }: FoundProject): Promise<ParsedPromotionManifest> => {
    const imagesFile = path.join(root, "images", project, THIN_IMAGES_FILE);
    const [manifestRead, imagesRead] = await Promise.all([
      readManifestFile(context, tree, THIN_TREE, "manifest file", file),
      readImagesFile(context, tree, imagesFile),
    ]);
    const projectFindings: Finding[] = [];
    if (manifestRead.kind === "refused") {
      projectFindings.push(manifestRead.finding);
      if (imagesRead?.kind === "refused") projectFindings.push(imagesRead.finding);
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
  return createManifestSet(manifests, findings, context.setOptions);
}

/**
 * The images file, or undefined when it does not exist (a finding, not an I/O error); a link to
 * a missing file is missing too.
 */
async function readImagesFile(
  context: LoadContext,
  tree: ManifestTree,
  file: string,
): Promise<ReadResult | undefined> {
  try {
    return await readManifestFile(context, tree, THIN_TREE, "images file", file);
  } catch (error) {
    if (error instanceof ManifestIoError && errnoCode(error.cause) === "ENOENT") return undefined;
    throw error;
  }
}
