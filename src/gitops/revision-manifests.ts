import { existsSync, realpathSync } from "node:fs";
import * as path from "node:path";
import { UsageError } from "../errors.js";
import {
  createManifestSet,
  MAX_MANIFEST_FILE_BYTES,
  parsePlainManifest,
  parseThinManifest,
  THIN_IMAGES_FILE,
  THIN_MANIFEST_FILE,
  type Finding,
  type ManifestInput,
  type ManifestSet,
  type ManifestText,
  type PromotionManifest,
} from "../manifest/index.js";
import { gitTopLevel, GitCommandError, listTree, readBlobs, resolveCommit, type GitOptions } from "./git.js";

/**
 * The manifests as they were at a git revision, read straight from the object database (nothing
 * is checked out). File names are those of the work tree, so positions read the same as in the
 * working copy and `oci:` directories resolve to the same places; the thin tree may be any
 * folder of the repository. Thin-tree layout rules are kpromo's (src/manifest/load.ts), except
 * that symbolic links are not followed at a revision.
 */

export interface RevisionManifests {
  /** The revision as given, and the commit it names. */
  readonly revision: string;
  readonly commit: string;
  readonly set: ManifestSet;
  /** The text of every manifest and images file at the revision, by absolute work-tree path. */
  readonly files: ReadonlyMap<string, string>;
}

export interface RevisionOptions {
  /** Relative inputs are resolved against this directory. */
  readonly cwd: string;
  readonly signal?: AbortSignal;
  readonly gitProgram?: string;
}

/** The nearest existing folder at or above `target` (the input may be gone from the work tree). */
export function existingFolder(target: string): string {
  let folder = target;
  while (!existsSync(folder)) {
    const parent = path.dirname(folder);
    if (parent === folder) break;
    folder = parent;
  }
  return folder;
}

/** `target` relative to the top of the work tree, with `/`; "" for the top itself. */
export function pathInRepository(top: string, target: string): string {
  const existing = existingFolder(target);
  const real = path.join(realpathSync(existing), path.relative(existing, target));
  const relative = path.relative(realpathSync(top), real);
  if (relative.startsWith("..") || path.isAbsolute(relative)) {
    throw new GitCommandError(`${target} is not inside the git work tree ${top}`);
  }
  return relative.split(path.sep).join("/");
}

/**
 * Loads the manifests named by `input` as they were at `revision`. A tree or file that did not
 * exist then is an empty set (everything in the working copy is new).
 */
export async function loadManifestsAtRevision(
  input: ManifestInput,
  revision: string,
  options: RevisionOptions,
): Promise<RevisionManifests> {
  if ((input.manifest === undefined) === (input.thinManifestDir === undefined)) {
    throw new UsageError("give exactly one of a manifest file or a thin-manifest directory");
  }
  const target = path.resolve(options.cwd, input.manifest ?? input.thinManifestDir ?? "");
  const start = existingFolder(input.manifest !== undefined ? path.dirname(target) : target);
  const startGit: GitOptions = {
    cwd: start,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.gitProgram ? { program: options.gitProgram } : {}),
  };
  const top = await gitTopLevel(startGit);
  const git: GitOptions = { ...startGit, cwd: top };
  const commit = await resolveCommit(revision, git);
  const relative = pathInRepository(top, target);
  const files = new Map<string, string>();

  if (input.manifest !== undefined) {
    const listed = await listTree(commit, [relative], git);
    const entry = listed.find((file) => file.path === relative);
    if (!entry) return { revision, commit, set: createManifestSet([]), files };
    const text = await readText({ ...entry, path: target }, git);
    files.set(target, text.text);
    const parsed = parsePlainManifest({ file: target, text: text.text });
    return {
      revision,
      commit,
      set: createManifestSet(parsed.manifest ? [parsed.manifest] : [], [
        ...text.findings,
        ...parsed.findings,
      ]),
      files,
    };
  }

  const prefix = relative === "" ? "" : `${relative}/`;
  const listed = await listTree(commit, [`${prefix}manifests`, `${prefix}images`], git);
  const byPath = new Map(listed.map((file) => [file.path, file]));
  const projects: { project: string; manifest: (typeof listed)[number] }[] = [];
  for (const file of listed) {
    const rest = file.path.slice(prefix.length).split("/");
    if (rest.length === 3 && rest[0] === "manifests" && rest[2] === THIN_MANIFEST_FILE && rest[1]) {
      projects.push({ project: rest[1], manifest: file });
    }
  }
  projects.sort((a, b) => (a.project < b.project ? -1 : a.project > b.project ? 1 : 0));
  const wanted = projects.flatMap(({ project, manifest }) => {
    const images = byPath.get(`${prefix}images/${project}/${THIN_IMAGES_FILE}`);
    return images ? [manifest, images] : [manifest];
  });
  const contents = await readBlobs(
    wanted.filter((file) => (file.size ?? 0) <= MAX_MANIFEST_FILE_BYTES).map((file) => file.object),
    git,
  );
  const manifests: PromotionManifest[] = [];
  const findings: Finding[] = [];
  const textOf = (file: (typeof listed)[number]): ManifestText => {
    const absolute = path.join(target, ...file.path.slice(prefix.length).split("/"));
    const bytes = contents.get(file.object);
    if (bytes === undefined) {
      findings.push(tooLarge(absolute, file.size ?? 0));
      return { file: absolute, text: "" };
    }
    const text = bytes.toString("utf8");
    files.set(absolute, text);
    return { file: absolute, text };
  };
  for (const { project, manifest } of projects) {
    const imagesFile = byPath.get(`${prefix}images/${project}/${THIN_IMAGES_FILE}`);
    const parsed = parseThinManifest(project, textOf(manifest), imagesFile ? textOf(imagesFile) : undefined);
    if (parsed.manifest) manifests.push(parsed.manifest);
    findings.push(...parsed.findings);
  }
  return { revision, commit, set: createManifestSet(manifests, findings), files };
}

async function readText(
  file: { object: string; size: number | undefined; path: string },
  git: GitOptions,
): Promise<{ text: string; findings: Finding[] }> {
  if ((file.size ?? 0) > MAX_MANIFEST_FILE_BYTES) {
    return { text: "", findings: [tooLarge(file.path, file.size ?? 0)] };
  }
  const contents = await readBlobs([file.object], git);
  return { text: contents.get(file.object)?.toString("utf8") ?? "", findings: [] };
}

function tooLarge(file: string, size: number): Finding {
  return {
    severity: "error",
    rule: "yaml-limit",
    message: `file has ${size} bytes at the base revision, more than the limit of ${MAX_MANIFEST_FILE_BYTES}; it was not read`,
    position: { file, line: 1, column: 1 },
  };
}
