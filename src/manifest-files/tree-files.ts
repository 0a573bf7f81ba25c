import { randomBytes } from "node:crypto";
import { constants, type Dirent, type Stats } from "node:fs";
import { lstat, mkdir, open, readlink, realpath, rename, rm, stat, type FileHandle } from "node:fs/promises";
import * as path from "node:path";
import { AbortedError, PromoterError } from "../errors.js";

/**
 * Reading and writing the files of a manifest tree without leaving it. The tree is the folder the
 * user named: a thin-manifest directory, or the folder that holds a plain manifest file. The path
 * to that folder is trusted as the user wrote it; everything inside it may come from a pull
 * request, whose author can commit symbolic links (git stores them) and, on a shared machine,
 * anyone who can write the folder can add FIFOs and devices. So, inside the tree:
 *
 * - a file is read only when it is a regular file whose real path (every link resolved) is inside
 *   the tree: a link that stays inside is followed, one that leaves is refused, and so are
 *   directories, FIFOs, sockets and devices (refused without being opened);
 * - the file is opened with O_NOFOLLOW and O_NONBLOCK (a FIFO swapped in cannot block the run),
 *   and the opened descriptor is checked again: still a regular file, the same inode, and (where
 *   /proc/self/fd tells) really inside the tree, so swapping a link in between the checks and the
 *   open gains nothing;
 * - exactly the size fstat reports is read: a file that grows, shrinks, or reports a size it does
 *   not have (the files of /proc and /sys report 0 or 4096) is refused;
 * - a write goes to a new temporary file beside the real target (created with O_EXCL, so a link
 *   planted at its name is never followed), which is then renamed over the target; the target and
 *   its folder are inside the tree, and a link to a missing file is not written through.
 *
 * Refusals are data (`TreeFileRefusal`): the caller turns them into a finding or an error that
 * names the path, never what is behind it. docs/manifest-format.md#files-of-a-tree says the same.
 */

/** What a tree entry is; a regular file is `file`. */
export type TreeEntryKind =
  | "file"
  | "directory"
  | "symbolic link"
  | "FIFO"
  | "socket"
  | "character device"
  | "block device"
  | "special file";

/** Why a file of a tree was not read or written. */
export type TreeFileRefusal =
  /** Its real path (links resolved) is outside the tree. */
  | { readonly reason: "outside-tree" }
  /** A directory, FIFO, socket or device where a file belongs. */
  | { readonly reason: "not-a-file"; readonly kind: Exclude<TreeEntryKind, "file"> }
  /** Larger than the caller's limit; nothing was read. */
  | { readonly reason: "too-large"; readonly size: number; readonly limit: number }
  /** It changed between the checks and the read, or its size is not its content's (/proc, /sys). */
  | { readonly reason: "unstable" }
  /** A write through a symbolic link whose target does not exist. */
  | { readonly reason: "dangling-link" };

export type TreeFileRead =
  | { readonly kind: "bytes"; readonly bytes: Buffer }
  | { readonly kind: "refused"; readonly refusal: TreeFileRefusal };

/** A file of a tree that is not written (or read) for the reason `refusal` gives. */
export class TreeFileRefusedError extends PromoterError {
  readonly path: string;
  readonly refusal: TreeFileRefusal;

  constructor(filePath: string, refusal: TreeFileRefusal, verb: "read" | "written") {
    super("tree-file-refused", `${filePath}: ${describeTreeFileRefusal(refusal, "the manifest tree", verb)}`);
    this.path = filePath;
    this.refusal = refusal;
  }
}

/**
 * One sentence for a refusal, naming nothing behind the path: `tree` says what the file was to
 * stay inside ("the manifest tree", "the folder of the manifest file").
 */
export function describeTreeFileRefusal(
  refusal: TreeFileRefusal,
  tree: string,
  verb: "read" | "written",
): string {
  switch (refusal.reason) {
    case "outside-tree":
      return `it leads outside ${tree} through a symbolic link; it was not ${verb}`;
    case "not-a-file":
      return `it is a ${refusal.kind}, not a regular file; it was not ${verb}`;
    case "too-large":
      return `file has ${refusal.size} bytes, more than the limit of ${refusal.limit}; it was not ${verb}`;
    case "unstable":
      return `it changed while it was read, or its size is not its content's (a /proc or /sys file?); it was not ${verb}`;
    case "dangling-link":
      return `it is a symbolic link to a file that does not exist; it was not ${verb}`;
  }
}

export function entryKind(entry: Stats | Dirent): TreeEntryKind {
  if (entry.isFile()) return "file";
  if (entry.isDirectory()) return "directory";
  if (entry.isSymbolicLink()) return "symbolic link";
  if (entry.isFIFO()) return "FIFO";
  if (entry.isSocket()) return "socket";
  if (entry.isCharacterDevice()) return "character device";
  if (entry.isBlockDevice()) return "block device";
  return "special file";
}

/** Opened for reading: never through a final link, never waiting on a FIFO, never a terminal. */
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;
/** A new temporary file: created here or not at all (O_EXCL does not follow a planted link). */
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
/** Mode of a file the tree did not have yet (before the umask). */
const NEW_FILE_MODE = 0o644;

function errnoCode(error: unknown): string | undefined {
  return error instanceof Error && "code" in error && typeof error.code === "string" ? error.code : undefined;
}

export type TreeLocation = { readonly inside: true; readonly real: string } | { readonly inside: false };

export class ManifestTree {
  /** The folder as named (absolute). */
  readonly root: string;
  /** Its real path: every path read or written resolves below it. */
  readonly realRoot: string;

  private constructor(root: string, realRoot: string) {
    this.root = root;
    this.realRoot = realRoot;
  }

  /** The tree at `root` (absolute); throws the file system's error when it cannot be resolved. */
  static async at(root: string): Promise<ManifestTree> {
    return new ManifestTree(root, await realpath(root));
  }

  /** Whether a real path is the tree's folder or below it. */
  contains(real: string): boolean {
    const prefix = this.realRoot.endsWith(path.sep) ? this.realRoot : `${this.realRoot}${path.sep}`;
    return real === this.realRoot || real.startsWith(prefix);
  }

  /**
   * Where `file` really is, every link resolved. Throws the file system's error when it does not
   * resolve (ENOENT also for a link to a missing file).
   */
  async locate(file: string): Promise<TreeLocation> {
    const real = await realpath(file);
    return this.contains(real) ? { inside: true, real } : { inside: false };
  }

  /**
   * The bytes of a regular file inside the tree, at most `maxBytes` of them, or why not. Throws
   * the file system's error for a missing or unreadable file, and `AbortedError`.
   */
  async read(file: string, options: { maxBytes: number; signal?: AbortSignal }): Promise<TreeFileRead> {
    const refuse = (refusal: TreeFileRefusal): TreeFileRead => ({ kind: "refused", refusal });
    const located = await this.locate(file);
    if (!located.inside) return refuse({ reason: "outside-tree" });
    const checked = await lstat(located.real);
    const kind = entryKind(checked);
    // Not opened at all: opening a device or a FIFO can have effects of its own.
    if (kind !== "file") return refuse({ reason: "not-a-file", kind });
    if (checked.size > options.maxBytes) {
      return refuse({ reason: "too-large", size: checked.size, limit: options.maxBytes });
    }
    let handle: FileHandle;
    try {
      handle = await open(located.real, READ_FLAGS);
    } catch (error) {
      // A link swapped in at the last component since lstat.
      if (errnoCode(error) === "ELOOP") return refuse({ reason: "unstable" });
      throw error;
    }
    try {
      const info = await handle.stat();
      if (!info.isFile() || info.dev !== checked.dev || info.ino !== checked.ino) {
        return refuse({ reason: "unstable" });
      }
      if (!(await this.openedInside(handle, located.real, info))) return refuse({ reason: "outside-tree" });
      if (info.size > options.maxBytes) {
        return refuse({ reason: "too-large", size: info.size, limit: options.maxBytes });
      }
      // One byte more than the size: a file with more content than it says is found out.
      const buffer = Buffer.alloc(info.size + 1);
      let filled = 0;
      while (filled < buffer.length) {
        if (options.signal?.aborted) {
          throw new AbortedError("reading manifests was aborted", { cause: options.signal.reason });
        }
        const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      if (filled !== info.size) return refuse({ reason: "unstable" });
      return { kind: "bytes", bytes: buffer.subarray(0, filled) };
    } finally {
      await handle.close();
    }
  }

  /**
   * Whether the descriptor is a file inside the tree. Linux names what a descriptor really opened
   * in /proc/self/fd (a folder swapped for a link on the way would show here); elsewhere the
   * checked path must still lead to the same inode.
   */
  private async openedInside(handle: FileHandle, real: string, info: Stats): Promise<boolean> {
    try {
      return this.contains(await readlink(`/proc/self/fd/${handle.fd}`));
    } catch {
      const again = await stat(real).catch(() => undefined);
      return again?.dev === info.dev && again.ino === info.ino;
    }
  }

  /**
   * Replaces the content of `file` (created, with its folders, if missing): through a temporary
   * file beside the real target and a rename, so the file is never half-written; a link inside
   * the tree is written at its target, with the mode the target had. Throws
   * `TreeFileRefusedError` when the target or its folder is not inside the tree, or is not a
   * regular file.
   */
  async writeAtomically(file: string, text: string): Promise<void> {
    const { real, mode } = await this.writeTarget(file);
    const temporary = path.join(
      path.dirname(real),
      `.${path.basename(real)}.${randomBytes(6).toString("hex")}.tmp`,
    );
    const handle = await open(temporary, CREATE_FLAGS, mode);
    try {
      try {
        await handle.writeFile(text);
      } finally {
        await handle.close();
      }
      await rename(temporary, real);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  }

  private async writeTarget(file: string): Promise<{ real: string; mode: number }> {
    const refuse = (refusal: TreeFileRefusal): never => {
      throw new TreeFileRefusedError(file, refusal, "written");
    };
    const existing = await lstat(file).catch((error: unknown) => {
      if (errnoCode(error) === "ENOENT") return undefined;
      throw error;
    });
    if (existing) {
      const located = await this.locateForWrite(file);
      if (!located.inside) return refuse({ reason: "outside-tree" });
      const target = await lstat(located.real);
      const kind = entryKind(target);
      if (kind !== "file") return refuse({ reason: "not-a-file", kind });
      return { real: located.real, mode: target.mode & 0o777 };
    }
    // A new file: the nearest folder that exists must be inside the tree before anything is made.
    const folder = path.dirname(file);
    let ancestor = folder;
    while (
      !(await lstat(ancestor).then(
        () => true,
        () => false,
      ))
    ) {
      const parent = path.dirname(ancestor);
      if (parent === ancestor) break;
      ancestor = parent;
    }
    if (!(await this.locateForWrite(ancestor)).inside) return refuse({ reason: "outside-tree" });
    await mkdir(folder, { recursive: true });
    const realFolder = await this.locateForWrite(folder);
    if (!realFolder.inside) return refuse({ reason: "outside-tree" });
    return { real: path.join(realFolder.real, path.basename(file)), mode: NEW_FILE_MODE };
  }

  /** `locate`, with a link to a missing file refused instead of reported as missing. */
  private async locateForWrite(file: string): Promise<TreeLocation> {
    try {
      return await this.locate(file);
    } catch (error) {
      if (errnoCode(error) === "ENOENT")
        throw new TreeFileRefusedError(file, { reason: "dangling-link" }, "written");
      throw error;
    }
  }
}
