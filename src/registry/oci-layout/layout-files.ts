import { randomBytes } from "node:crypto";
import { constants, type BigIntStats } from "node:fs";
import { lstat, mkdir, open, readlink, realpath, rename, unlink, type FileHandle } from "node:fs/promises";
import * as path from "node:path";
import type { Readable } from "node:stream";
import { AbortedError } from "../../errors.js";
import {
  digestAlgorithm,
  digestHex,
  DigestVerifier,
  isRepositoryPath,
  repositoryPathProblem,
  type Digest,
} from "../../reference/index.js";
import type { RegistryError, RegistryErrorCode } from "../errors.js";
import { MAX_OCI_LAYOUT_FILE_BYTES, MAX_VERIFIED_BLOB_FILES } from "./limits.js";

/**
 * The files of one OCI image layout directory (`TREE/<repository>`, where `oci:TREE` is what a
 * manifest names), read and written safely:
 * - Nothing below the tree root is reached through a symlink, for reads as for writes: every
 *   folder from the tree root down (repository folders, `blobs/`, `blobs/<alg>/`) is checked with
 *   `lstat`, files are opened with `O_NOFOLLOW` (and `O_NONBLOCK`, so a FIFO cannot hang a read),
 *   and where Linux tells which file a descriptor names (`/proc/self/fd`), that it is exactly the
 *   file named (a folder swapped for a symlink between the check and the open is caught). The tree root
 *   itself, and the folders above it, are the user's choice and may be symlinks.
 * - No `..` and no absolute repository names; size caps on what is read into memory.
 * - Writes are atomic (a temporary file created exclusively in the same folder, fsync, rename).
 * - Blob bytes are checked against their digest whenever they enter the layout, and a blob
 *   already present is trusted only once its bytes were hashed (`verifiedBlobSize`).
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/image-layout.md
 */

export const OCI_LAYOUT_FILE = "oci-layout";
export const INDEX_JSON_FILE = "index.json";
export const BLOBS_FOLDER = "blobs";
export const IMAGE_LAYOUT_VERSION = "1.0.0";
/** Temporary files start with this, so they are never mistaken for blobs (`<hex>` names). */
const TEMPORARY_PREFIX = ".tmp-";

/** Builds the RegistryError for a failure in this layout (the store knows its names). */
export type LayoutErrorFactory = (
  code: RegistryErrorCode,
  operation: string,
  summary: string,
  cause?: unknown,
) => RegistryError;

/** Why a layout tree directory or repository path cannot be used, or undefined. */
export function layoutPathProblem(directory: string, repository: string): string | undefined {
  if (directory.includes("\0") || repository.includes("\0")) return "a path cannot contain NUL";
  if (!path.isAbsolute(directory))
    return `the layout directory ${JSON.stringify(directory)} must be absolute`;
  if (path.isAbsolute(repository) || repository.startsWith("/")) {
    return `repository ${JSON.stringify(repository)} must be relative to the layout directory`;
  }
  if (repository.split(/[/\\]/).includes("..")) {
    return `repository ${JSON.stringify(repository)} must not contain ".."`;
  }
  if (!isRepositoryPath(repository)) return repositoryPathProblem(repository);
  return undefined;
}

/** `directory/repository`, checked to stay inside `directory`. Throws a plain Error on misuse. */
export function layoutDirectoryOf(directory: string, repository: string): string {
  const problem = layoutPathProblem(directory, repository);
  if (problem) throw new Error(problem);
  const joined = path.join(directory, repository);
  const relative = path.relative(directory, joined);
  if (relative.startsWith("..") || path.isAbsolute(relative) || relative.length === 0) {
    throw new Error(`repository ${JSON.stringify(repository)} leaves the layout directory`);
  }
  return joined;
}

/** What changes whenever a file is replaced or rewritten (writers here replace by rename). */
function identityOf(info: BigIntStats): string {
  return `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
}

function isNotFound(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/** What `open` with `O_NOFOLLOW` fails with on a symlink (Linux: ELOOP; some BSDs: EMLINK). */
function isSymlinkRefusal(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ELOOP" || code === "EMLINK";
}

/** What Linux appends to `/proc/self/fd/N` when the file was unlinked or replaced after opening. */
const DELETED_SUFFIX = " (deleted)";

const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * Blob files whose bytes were hashed and matched their name, by path, with the identity (inode,
 * size, times) they had then: a file rewritten since has another identity and is hashed again.
 * Shared by every store of this process (a run opens one store per edge).
 */
const verifiedBlobFiles = new Map<string, string>();

function rememberVerified(file: string, identity: string): void {
  if (verifiedBlobFiles.size >= MAX_VERIFIED_BLOB_FILES) verifiedBlobFiles.clear();
  verifiedBlobFiles.set(file, identity);
}

/** What `verifiedBlobSize` found. */
export type BlobCheck =
  | { readonly state: "absent" }
  | { readonly state: "verified"; readonly size: number }
  | { readonly state: "corrupt"; readonly size: number; readonly actual: Digest | undefined };

export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortedError(`${what} aborted`, { cause: signal.reason });
}

export class LayoutFiles {
  /** The tree root a manifest names (`oci:TREE`): absolute; may itself be a symlink. */
  readonly tree: string;
  /** This repository's layout folder, `TREE/<repository>`. */
  readonly root: string;
  private readonly fail: LayoutErrorFactory;
  private realTreePromise: Promise<string> | undefined;

  constructor(tree: string, repository: string, fail: LayoutErrorFactory) {
    this.tree = tree;
    this.root = layoutDirectoryOf(tree, repository);
    this.fail = fail;
  }

  blobPath(digest: Digest): string {
    return path.join(this.root, BLOBS_FOLDER, digestAlgorithm(digest), digestHex(digest));
  }

  indexJsonPath(): string {
    return path.join(this.root, INDEX_JSON_FILE);
  }

  private describe(file: string): string {
    return path.relative(this.tree, file) || ".";
  }

  private symlinkRefused(file: string, operation: string): RegistryError {
    return this.fail(
      "layout-invalid",
      operation,
      `${this.describe(file)} is a symlink; nothing below the layout tree is followed through one`,
    );
  }

  /** The folders from just below the tree root down to `file`'s folder, top first. */
  private foldersTo(file: string): string[] {
    const relative = path.relative(this.tree, path.dirname(file));
    if (relative === "") return [];
    const folders: string[] = [];
    let current = this.tree;
    for (const segment of relative.split(path.sep)) {
      current = path.join(current, segment);
      folders.push(current);
    }
    return folders;
  }

  /**
   * Checks every folder on the way to `file` below the tree root: each must be a real folder,
   * not a symlink. False when one does not exist (nor then does `file`).
   */
  private async foldersExist(file: string, operation: string): Promise<boolean> {
    for (const folder of this.foldersTo(file)) {
      let info;
      try {
        info = await lstat(folder);
      } catch (error) {
        if (isNotFound(error)) return false;
        throw this.fail("layout-invalid", operation, `cannot read ${this.describe(folder)}`, error);
      }
      if (info.isSymbolicLink()) throw this.symlinkRefused(folder, operation);
      if (!info.isDirectory()) {
        throw this.fail("layout-invalid", operation, `${this.describe(folder)} is not a folder`);
      }
    }
    return true;
  }

  private realTree(): Promise<string> {
    this.realTreePromise ??= realpath(this.tree).catch((error: unknown) => {
      // Not there yet: retry next time (the tree may be created by a write).
      this.realTreePromise = undefined;
      throw error;
    });
    return this.realTreePromise;
  }

  /**
   * Where Linux can tell (`/proc/self/fd`), that an open descriptor names exactly `file` below
   * the tree's real path: a folder replaced by a symlink after `foldersExist` checked it (even
   * one pointing elsewhere inside the tree) is caught here.
   */
  private async checkOpenedInside(handle: FileHandle, file: string, operation: string): Promise<void> {
    let opened: string;
    try {
      opened = await readlink(`/proc/self/fd/${handle.fd}`);
    } catch {
      return; // No /proc: the lstat checks stand alone.
    }
    let tree: string;
    try {
      tree = await this.realTree();
    } catch (error) {
      throw this.fail("layout-invalid", operation, "cannot resolve the layout tree", error);
    }
    // No symlinks below the tree: the file must be exactly where its name says. A file replaced
    // by rename since it was opened (index.json rewritten by another store) reads " (deleted)".
    const where = opened.endsWith(DELETED_SUFFIX) ? opened.slice(0, -DELETED_SUFFIX.length) : opened;
    if (where !== path.join(tree, path.relative(this.tree, file))) {
      throw this.fail(
        "layout-invalid",
        operation,
        `${this.describe(file)} opened as ${opened}; a folder on its way was replaced by a symlink`,
      );
    }
  }

  /** Opens a file below the tree for reading, or undefined when absent; refuses symlinks. */
  private async openForReading(file: string, operation: string): Promise<FileHandle | undefined> {
    if (!(await this.foldersExist(file, operation))) return undefined;
    let handle: FileHandle;
    try {
      handle = await open(file, READ_FLAGS);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      if (isSymlinkRefusal(error)) throw this.symlinkRefused(file, operation);
      throw this.fail("layout-invalid", operation, `cannot open ${this.describe(file)}`, error);
    }
    try {
      const info = await handle.stat();
      if (!info.isFile())
        throw this.fail("layout-invalid", operation, `${this.describe(file)} is not a file`);
      await this.checkOpenedInside(handle, file, operation);
      return handle;
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** A whole small file (manifest, index.json), or undefined when absent. Refuses above `max`. */
  async readCapped(file: string, max: number, operation: string): Promise<Buffer | undefined> {
    const read = await this.readCappedUnlessKnown(file, max, operation, undefined);
    return read?.bytes;
  }

  /**
   * Like `readCapped`, but returns the identity of the file it opened (inode, size, times) and
   * skips reading when that identity is `known`: writers replace files by rename, so an unchanged
   * identity means unchanged content.
   */
  async readCappedUnlessKnown(
    file: string,
    max: number,
    operation: string,
    known: string | undefined,
  ): Promise<{ identity: string; bytes?: Buffer } | undefined> {
    const handle = await this.openForReading(file, operation);
    if (!handle) return undefined;
    try {
      const info = await handle.stat({ bigint: true });
      const identity = identityOf(info);
      if (identity === known) return { identity };
      if (info.size > max) {
        throw this.fail(
          "registry-too-large",
          operation,
          `${this.describe(file)} is ${info.size} bytes, above the ${max}-byte limit`,
        );
      }
      const bytes = await handle.readFile();
      if (bytes.length > max) {
        throw this.fail("registry-too-large", operation, `${this.describe(file)} grew above ${max} bytes`);
      }
      return { identity, bytes };
    } finally {
      await handle.close();
    }
  }

  /**
   * Size of a blob file, or undefined when absent: whether the layout holds the name, not what
   * it holds (see `verifiedBlobSize`). Refuses symlinks and non-files.
   */
  async blobSize(digest: Digest, operation: string): Promise<number | undefined> {
    const file = this.blobPath(digest);
    if (!(await this.foldersExist(file, operation))) return undefined;
    let info;
    try {
      info = await lstat(file);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.fail("layout-invalid", operation, `cannot read ${this.describe(file)}`, error);
    }
    if (info.isSymbolicLink()) throw this.symlinkRefused(file, operation);
    if (!info.isFile()) throw this.fail("layout-invalid", operation, `${this.describe(file)} is not a file`);
    return info.size;
  }

  /**
   * Whether the blob file holds bytes that hash to its name: hashed once per file identity in this
   * process (written or checked earlier: not again). A present blob is trusted only this way.
   */
  async verifiedBlobSize(
    digest: Digest,
    signal: AbortSignal | undefined,
    operation: string,
  ): Promise<BlobCheck> {
    const file = this.blobPath(digest);
    const handle = await this.openForReading(file, operation);
    if (!handle) return { state: "absent" };
    try {
      const info = await handle.stat({ bigint: true });
      const size = Number(info.size);
      const identity = identityOf(info);
      if (verifiedBlobFiles.get(file) === identity) return { state: "verified", size };
      const verifier = new DigestVerifier(digest);
      for await (const chunk of handle.createReadStream({
        autoClose: false,
        start: 0,
      }) as AsyncIterable<Buffer>) {
        throwIfAborted(signal, `checking blob ${digest}`);
        verifier.update(chunk);
      }
      const actual = verifier.finish();
      if (actual !== digest || verifier.bytesSeen !== size) return { state: "corrupt", size, actual };
      rememberVerified(file, identity);
      return { state: "verified", size };
    } finally {
      await handle.close();
    }
  }

  /**
   * A read stream of a blob file and its size, or undefined when absent; the caller verifies the
   * bytes (see the store's `verifyingStream`, or `writeBlob`).
   */
  async openBlobFile(
    digest: Digest,
    operation: string,
  ): Promise<{ stream: Readable; size: number } | undefined> {
    const handle = await this.openForReading(this.blobPath(digest), operation);
    if (!handle) return undefined;
    try {
      const { size } = await handle.stat();
      // The stream owns the descriptor from here and closes it when it ends or is destroyed.
      return { stream: handle.createReadStream({ start: 0 }), size };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Whether the `oci-layout` file exists; refuses an unknown layout version. */
  async checkLayoutMarker(operation: string): Promise<boolean> {
    const bytes = await this.readCapped(
      path.join(this.root, OCI_LAYOUT_FILE),
      MAX_OCI_LAYOUT_FILE_BYTES,
      operation,
    );
    if (bytes === undefined) return false;
    let version: unknown;
    try {
      version = (JSON.parse(bytes.toString("utf8")) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
    } catch (error) {
      throw this.fail("layout-invalid", operation, "oci-layout is not JSON", error);
    }
    if (typeof version !== "string" || !version.startsWith("1.")) {
      throw this.fail(
        "layout-invalid",
        operation,
        `oci-layout has imageLayoutVersion ${JSON.stringify(version)}; only 1.x is supported`,
      );
    }
    return true;
  }

  /** Creates `folder` unless it exists; it must then be a real folder, not a symlink. */
  private async ensureFolder(folder: string, operation: string): Promise<void> {
    try {
      await mkdir(folder);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
        throw this.fail("layout-invalid", operation, `cannot create ${this.describe(folder)}`, error);
      }
    }
    const info = await lstat(folder);
    if (info.isSymbolicLink()) throw this.symlinkRefused(folder, operation);
    if (!info.isDirectory())
      throw this.fail("layout-invalid", operation, `${this.describe(folder)} is not a folder`);
  }

  /**
   * Creates the layout on first write: the folders from the tree root down, `oci-layout`,
   * `blobs/<algorithm>/`. Folder by folder, each checked before anything is created below it.
   */
  async ensureLayout(algorithm: string, operation: string): Promise<void> {
    // The tree root is the user's: created as named, following whatever symlinks they chose.
    await mkdir(this.tree, { recursive: true });
    const blobs = path.join(this.root, BLOBS_FOLDER, algorithm);
    for (const folder of this.foldersTo(path.join(blobs, "file"))) await this.ensureFolder(folder, operation);
    if (!(await this.checkLayoutMarker(operation))) {
      await this.writeAtomic(
        path.join(this.root, OCI_LAYOUT_FILE),
        Buffer.from(JSON.stringify({ imageLayoutVersion: IMAGE_LAYOUT_VERSION })),
      );
    }
  }

  private temporaryPathFor(file: string): string {
    return path.join(
      path.dirname(file),
      `${TEMPORARY_PREFIX}${path.basename(file)}-${randomBytes(6).toString("hex")}`,
    );
  }

  /**
   * A new temporary file next to `file`, created exclusively (never an existing file or a
   * symlink), after checking the folders on its way.
   */
  private async createTemporary(
    file: string,
    operation: string,
  ): Promise<{ temporary: string; handle: FileHandle }> {
    if (!(await this.foldersExist(file, operation))) {
      throw this.fail("layout-invalid", operation, `the folder of ${this.describe(file)} does not exist`);
    }
    const temporary = this.temporaryPathFor(file);
    let handle: FileHandle;
    try {
      handle = await open(temporary, CREATE_FLAGS, 0o644);
    } catch (error) {
      throw this.fail(
        "layout-invalid",
        operation,
        `cannot create a file next to ${this.describe(file)}`,
        error,
      );
    }
    try {
      await this.checkOpenedInside(handle, temporary, operation);
    } catch (error) {
      await handle.close();
      await unlink(temporary).catch(() => undefined);
      throw error;
    }
    return { temporary, handle };
  }

  /**
   * Writes a whole file atomically: readers see the old file or the new one, never a part.
   * Returns the identity (as `readCappedUnlessKnown` computes it) of the file written, taken
   * from the open handle after the rename, so it names our inode even if another writer has
   * replaced the file since.
   */
  async writeAtomic(file: string, bytes: Uint8Array, operation = "write"): Promise<string> {
    const { temporary, handle } = await this.createTemporary(file, operation);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
      await this.renameIntoPlace(temporary, file, operation);
      return identityOf(await handle.stat({ bigint: true }));
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw error;
    } finally {
      await handle.close();
    }
  }

  private async renameIntoPlace(temporary: string, file: string, operation: string): Promise<void> {
    // Never replace a symlink's target: rename replaces the directory entry itself.
    try {
      const existing = await lstat(file);
      if (existing.isSymbolicLink()) throw this.symlinkRefused(file, operation);
      if (existing.isDirectory()) {
        throw this.fail(
          "layout-invalid",
          operation,
          `${this.describe(file)} is a folder; refusing to replace it`,
        );
      }
    } catch (error) {
      if (!isNotFound(error)) {
        await unlink(temporary).catch(() => undefined);
        throw error;
      }
    }
    try {
      await rename(temporary, file);
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Streams `content` into `blobs/<alg>/<hex>` through a temporary file, verifying size and digest
   * on the way; the blob appears (by rename, replacing a corrupt file of that name) only when
   * both match. Concurrent writers of the same digest each write their own temporary file and
   * rename identical bytes into place.
   */
  async writeBlob(
    digest: Digest,
    size: number,
    content: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    signal: AbortSignal | undefined,
    operation: string,
  ): Promise<void> {
    const file = this.blobPath(digest);
    const { temporary, handle } = await this.createTemporary(file, operation);
    const verifier = new DigestVerifier(digest);
    let renamed = false;
    try {
      for await (const chunk of content) {
        throwIfAborted(signal, `writing blob ${digest}`);
        if (verifier.bytesSeen + chunk.byteLength > size) {
          throw this.fail(
            "registry-digest-mismatch",
            operation,
            `blob ${digest} has more than the ${size} bytes its descriptor says`,
          );
        }
        verifier.update(chunk);
        await handle.write(chunk);
      }
      throwIfAborted(signal, `writing blob ${digest}`);
      if (verifier.bytesSeen !== size) {
        throw this.fail(
          "registry-digest-mismatch",
          operation,
          `blob ${digest} has ${verifier.bytesSeen} bytes, its descriptor says ${size}`,
        );
      }
      const actual = verifier.finish();
      if (actual !== digest) {
        throw this.fail("registry-digest-mismatch", operation, `blob ${digest} hashes to ${actual}`);
      }
      await handle.sync();
      await this.renameIntoPlace(temporary, file, operation);
      renamed = true;
      rememberVerified(file, identityOf(await handle.stat({ bigint: true })));
      await handle.close();
    } finally {
      if (!renamed) {
        await handle.close().catch(() => undefined);
        await unlink(temporary).catch(() => undefined);
      }
    }
  }

  async removeFile(file: string, operation = "delete"): Promise<boolean> {
    if (!(await this.foldersExist(file, operation))) return false;
    try {
      await unlink(file);
      verifiedBlobFiles.delete(file);
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }
}
