import { randomBytes } from "node:crypto";
import { constants, createReadStream, type BigIntStats } from "node:fs";
import { link, lstat, mkdir, open, realpath, rename, stat, unlink, type FileHandle } from "node:fs/promises";
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
import { MAX_OCI_LAYOUT_FILE_BYTES } from "./limits.js";

/**
 * The files of one OCI image layout directory, read and written safely: paths cannot leave the
 * layout (no `..`, no absolute names, no symlinks that point outside), size caps on what is read
 * into memory, and writes that are atomic (temporary file in the same folder, fsync, rename).
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/image-layout.md
 */

export const OCI_LAYOUT_FILE = "oci-layout";
export const INDEX_JSON_FILE = "index.json";
export const BLOBS_FOLDER = "blobs";
export const IMAGE_LAYOUT_VERSION = "1.0.0";
/** Temporary files start with this, so they are never mistaken for blobs (`<hex>` names). */
const TEMPORARY_PREFIX = ".tmp-";

/** Builds the RegistryError for a failure in this layout (the store knows side and names). */
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

export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortedError(`${what} aborted`, { cause: signal.reason });
}

export class LayoutFiles {
  readonly root: string;
  private readonly fail: LayoutErrorFactory;
  private realRootPromise: Promise<string> | undefined;

  constructor(root: string, fail: LayoutErrorFactory) {
    this.root = root;
    this.fail = fail;
  }

  blobPath(digest: Digest): string {
    return path.join(this.root, BLOBS_FOLDER, digestAlgorithm(digest), digestHex(digest));
  }

  indexJsonPath(): string {
    return path.join(this.root, INDEX_JSON_FILE);
  }

  private realRoot(): Promise<string> {
    this.realRootPromise ??= realpath(this.root).catch((error: unknown) => {
      // Not there yet: retry next time (the layout may be created by a write).
      this.realRootPromise = undefined;
      throw error;
    });
    return this.realRootPromise;
  }

  /**
   * Whether `file` exists, after checking that it (and every folder on its way) resolves inside
   * the layout: a symlink that points out of the layout is refused, not followed.
   */
  async exists(file: string, operation: string): Promise<boolean> {
    let real: string;
    try {
      real = await realpath(file);
    } catch (error) {
      if (isNotFound(error)) return false;
      // A dangling symlink also lands here (ENOENT); other errors are real problems.
      throw this.fail("layout-invalid", operation, `cannot resolve ${this.describe(file)}`, error);
    }
    const root = await this.realRoot();
    if (real !== root && !real.startsWith(root + path.sep)) {
      throw this.fail(
        "layout-invalid",
        operation,
        `${this.describe(file)} resolves to ${real}, outside the layout directory; refusing to follow it`,
      );
    }
    return true;
  }

  private describe(file: string): string {
    return path.relative(this.root, file) || ".";
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
    if (!(await this.exists(file, operation))) return undefined;
    let handle: FileHandle;
    try {
      handle = await open(file, constants.O_RDONLY);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.fail("layout-invalid", operation, `cannot open ${this.describe(file)}`, error);
    }
    try {
      const info = await handle.stat({ bigint: true });
      if (!info.isFile())
        throw this.fail("layout-invalid", operation, `${this.describe(file)} is not a file`);
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

  /** Size of a blob file, or undefined when absent (after the symlink check). */
  async blobSize(digest: Digest, operation: string): Promise<number | undefined> {
    const file = this.blobPath(digest);
    if (!(await this.exists(file, operation))) return undefined;
    const info = await stat(file);
    if (!info.isFile()) throw this.fail("layout-invalid", operation, `${this.describe(file)} is not a file`);
    return info.size;
  }

  /** A read stream of a blob file; the caller verifies it (see `verifyingStream`). */
  openBlobFile(digest: Digest): Readable {
    return createReadStream(this.blobPath(digest));
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

  /**
   * Creates the layout on first write: the folder, `oci-layout`, `blobs/<algorithm>/`. Checks
   * that the blob folder does not lead out of the layout before anything is written there.
   */
  async ensureLayout(algorithm: string, operation: string): Promise<void> {
    await mkdir(this.root, { recursive: true });
    // Folder by folder, checking each before creating below it: nothing may be created through a
    // symlink that leads out of the layout.
    for (const folder of [
      path.join(this.root, BLOBS_FOLDER),
      path.join(this.root, BLOBS_FOLDER, algorithm),
    ]) {
      if (await this.exists(folder, operation)) continue;
      try {
        await mkdir(folder);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      if (!(await this.exists(folder, operation))) {
        throw this.fail("layout-invalid", operation, `cannot create ${this.describe(folder)}`);
      }
    }
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
   * Writes a whole file atomically: readers see the old file or the new one, never a part.
   * Returns the identity (as `readCappedUnlessKnown` computes it) of the file written, taken
   * from the open handle after the rename, so it names our inode even if another writer has
   * replaced the file since.
   */
  async writeAtomic(file: string, bytes: Uint8Array): Promise<string> {
    const temporary = this.temporaryPathFor(file);
    const handle = await open(temporary, "wx", 0o644);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
      await this.renameIntoPlace(temporary, file);
      return identityOf(await handle.stat({ bigint: true }));
    } catch (error) {
      await unlink(temporary).catch(() => undefined);
      throw error;
    } finally {
      await handle.close();
    }
  }

  private async renameIntoPlace(temporary: string, file: string): Promise<void> {
    // Never replace a symlink's target: rename replaces the directory entry itself.
    try {
      const existing = await lstat(file);
      if (existing.isSymbolicLink() || existing.isDirectory()) {
        throw this.fail(
          "layout-invalid",
          "write",
          `${this.describe(file)} is a ${existing.isDirectory() ? "folder" : "symlink"}; refusing to replace it`,
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
   * on the way; the blob appears (by rename) only when both match. Concurrent writers of the same
   * digest each write their own temporary file and rename identical bytes into place.
   */
  async writeBlob(
    digest: Digest,
    size: number,
    content: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    signal: AbortSignal | undefined,
    operation: string,
  ): Promise<void> {
    const file = this.blobPath(digest);
    const temporary = this.temporaryPathFor(file);
    const verifier = new DigestVerifier(digest);
    const handle = await open(temporary, "wx", 0o644);
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
      await handle.close();
      await this.renameIntoPlace(temporary, file);
      renamed = true;
    } finally {
      if (!renamed) {
        await handle.close().catch(() => undefined);
        await unlink(temporary).catch(() => undefined);
      }
    }
  }

  /** Hard-links (or when that fails, reports false) `source` as the blob `digest` here. */
  async linkBlob(source: string, digest: Digest): Promise<boolean> {
    const file = this.blobPath(digest);
    const temporary = this.temporaryPathFor(file);
    try {
      await link(source, temporary);
    } catch {
      return false;
    }
    await this.renameIntoPlace(temporary, file);
    return true;
  }

  async removeFile(file: string): Promise<boolean> {
    try {
      await unlink(file);
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }
}
