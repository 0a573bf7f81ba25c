import * as path from "node:path";
import { PromoterError, UsageError } from "../errors.js";
import { escapeExcerpt, quoteExcerpt } from "../excerpt.js";
import {
  applyRepositoryOwnership,
  attachmentTagProblem,
  findTagConflicts,
  formatPosition,
  MAX_MANIFEST_FILE_BYTES,
  mergeImages,
  parseThinManifest,
  sourceRegistry,
  type Finding,
  type PromotionManifest,
  type RegistryPolicy,
  type TagConflict,
} from "../manifest/index.js";
import {
  loadManifests,
  ManifestTree,
  realDirectory,
  THIN_IMAGES_FILE,
  describeTreeFileRefusal,
  TreeFileRefusedError,
  type TreeFileRefusal,
} from "../manifest-files/index.js";
import {
  digestProblem,
  isDigest,
  isTag,
  repositoryIn,
  repositoryPathProblem,
  tagProblem,
  type Digest,
  type RepositoryPath,
  type Tag,
} from "../reference/index.js";
import { openOnSide, type RepositoryOpener } from "../registry/index.js";
import { addToImagesFile, type ImagesFileAddition, type ImagesFileChange } from "./images-file.js";

/**
 * `promoter manifest add`: adds an image's digest and tags to a project's images.yaml, the way a
 * maintainer would by hand but without typos: the digest of each tag is looked up in the
 * project's staging (source) registry, `latest` and tags that already point at another digest
 * anywhere in the tree are refused, and the file is edited in place (images-file.ts) so that the
 * pull request shows only the added lines. A second identical call changes nothing.
 */

/** Tags that float by nature; a reviewed manifest pins versions. Compared without case. */
export const REFUSED_TAGS: readonly string[] = ["latest"];

/** A request the manifests or the registry say no to (exit status 1: the answer is "no"). */
export class ManifestAddRefusedError extends PromoterError {
  constructor(message: string) {
    super("manifest-add-refused", message);
  }
}

export interface ManifestAddOptions {
  readonly thinManifestDir: string;
  readonly project: string;
  readonly image: string;
  /** Tags to add; looked up in staging unless `digest` is given. */
  readonly tags: readonly string[];
  /** The digest to add; with `tags`, they are set on it; alone, it is listed without a tag. */
  readonly digest?: string;
  readonly provider: RepositoryOpener;
  readonly cwd: string;
  readonly signal?: AbortSignal;
  /** Work everything out but do not write the file. */
  readonly dryRun?: boolean;
  /** Which registries the tree may name (`loadRegistryPolicy`); a refused source is never read. */
  readonly registryPolicy?: RegistryPolicy;
}

export interface ManifestAddResult {
  /** The images file (absolute). */
  readonly file: string;
  /** What was asked for, with digests resolved. */
  readonly additions: readonly ImagesFileAddition[];
  /** What changed; empty when everything was already listed. */
  readonly changes: readonly ImagesFileChange[];
  readonly written: boolean;
  /** The images file's text before the edit (empty when it did not exist) and after it. */
  readonly before: string;
  readonly after: string;
  /** Where the digests were looked up: `host/path/image` or `oci:DIR/image`. */
  readonly source: string;
}

function checkRequest(options: ManifestAddOptions): { image: RepositoryPath; tags: Tag[]; digest?: Digest } {
  const imageProblem = repositoryPathProblem(options.image);
  if (imageProblem) throw new UsageError(`--image ${quoteExcerpt(options.image)}: ${imageProblem}`);
  if (options.project === "" || options.project.includes("/") || options.project.startsWith(".")) {
    throw new UsageError(`--project ${quoteExcerpt(options.project)} is not a project folder name`);
  }
  for (const tag of options.tags) {
    const problem = isTag(tag) ? attachmentTagProblem(tag) : (tagProblem(tag) ?? "invalid tag");
    if (problem) throw new UsageError(`--tag ${quoteExcerpt(tag)}: ${problem}`);
  }
  if (options.digest !== undefined && !isDigest(options.digest)) {
    throw new UsageError(
      `--digest ${quoteExcerpt(options.digest)}: ${digestProblem(options.digest) ?? "invalid digest"}`,
    );
  }
  if (options.tags.length === 0 && options.digest === undefined) {
    throw new UsageError("give --tag T (repeatable) or --digest D, or both");
  }
  const refused = options.tags.filter((tag) => REFUSED_TAGS.includes(tag.toLowerCase()));
  if (refused.length > 0) {
    throw new ManifestAddRefusedError(
      `tag ${quoteExcerpt(refused[0] ?? "")} is refused: it moves with every build, and promoted tags never move; add a version tag`,
    );
  }
  return {
    image: options.image as RepositoryPath,
    tags: [...new Set(options.tags)] as Tag[],
    ...(options.digest === undefined ? {} : { digest: options.digest }),
  };
}

function projectManifest(
  manifests: readonly PromotionManifest[],
  project: string,
  dir: string,
): PromotionManifest {
  const manifest = manifests.find((candidate) => candidate.project === project);
  if (!manifest) {
    throw new UsageError(
      `no project ${quoteExcerpt(project)} in ${escapeExcerpt(dir)}: expected manifests/${escapeExcerpt(project)}/promoter-manifest.yaml (projects: ${manifests.map((m) => escapeExcerpt(m.project)).join(", ") || "none"})`,
    );
  }
  return manifest;
}

export async function addToManifest(options: ManifestAddOptions): Promise<ManifestAddResult> {
  const request = checkRequest(options);
  const call = options.signal ? { signal: options.signal } : {};
  const dir = path.resolve(options.cwd, options.thinManifestDir);
  const set = await loadManifests(
    { thinManifestDir: dir },
    {
      cwd: options.cwd,
      ...call,
      ...(options.registryPolicy ? { registryPolicy: options.registryPolicy } : {}),
    },
  );
  const manifest = projectManifest(set.manifests, options.project, dir);
  const source = sourceRegistry(manifest);
  const refused = set.findings.find(
    (finding) => finding.rule === "registry-not-allowed" && finding.position.file === manifest.file,
  );
  if (!source && refused) {
    throw new ManifestAddRefusedError(`${formatPosition(refused.position)}: ${refused.message}`);
  }
  if (!source) {
    throw new ManifestAddRefusedError(
      `project ${quoteExcerpt(options.project)} has no usable source registry (exactly one with src: true); run promoter validate`,
    );
  }
  const sourceLocation = repositoryIn(source.location, request.image);
  const store = openOnSide(options.provider, sourceLocation, "source");

  // Digests from staging: a typo in a tag or digest fails here, not after review.
  const additions: ImagesFileAddition[] = [];
  if (request.digest !== undefined) {
    const found = await store.resolve(request.digest, call);
    if (!found) {
      throw new ManifestAddRefusedError(`${request.digest} is not in the staging repository ${store.name}`);
    }
    additions.push({ image: request.image, digest: request.digest, tags: request.tags });
  } else {
    const byDigest = new Map<Digest, Tag[]>();
    for (const tag of request.tags) {
      const found = await store.resolve(tag, call);
      if (!found)
        throw new ManifestAddRefusedError(`tag ${tag} is not in the staging repository ${store.name}`);
      const list = byDigest.get(found.digest);
      if (list) list.push(tag);
      else byDigest.set(found.digest, [tag]);
    }
    for (const [digest, tags] of byDigest) additions.push({ image: request.image, digest, tags });
  }

  // Read and written only inside the tree: a link out of it (to a file the promoter can write) is
  // refused, as the loader refuses to read it.
  const tree = await ManifestTree.at(dir);
  const imagesFile = manifest.imagesFile ?? path.join(dir, "images", options.project, THIN_IMAGES_FILE);
  const before = (await readTreeText(tree, imagesFile, options.cwd)) ?? "";
  const edit = addToImagesFile(before, imagesFile, additions);
  const result = {
    file: imagesFile,
    additions,
    changes: edit.changes,
    source: store.name,
    before,
    after: edit.text,
  };
  if (edit.changes.length === 0) return { ...result, written: false };

  const manifestText = {
    file: manifest.file,
    text: (await readTreeText(tree, manifest.file, options.cwd)) ?? "",
  };
  const edited = parseThinManifest(options.project, manifestText, { file: imagesFile, text: edit.text });
  const original = parseThinManifest(options.project, manifestText, { file: imagesFile, text: before });
  if (!edited.manifest || !original.manifest) {
    throw new PromoterError(
      "internal",
      `${imagesFile}: the edited file no longer parses; nothing was written`,
    );
  }
  verifyEdit(original.manifest, edited.manifest, edit.changes, imagesFile);
  const newFindings = edited.findings.length - original.findings.length;
  if (newFindings > 0) {
    throw new PromoterError(
      "internal",
      `${imagesFile}: the edit would add ${newFindings} findings; nothing was written`,
    );
  }
  const others = set.manifests.filter((candidate) => candidate !== manifest);
  const foreign = ownershipRefusal(set.findings, original.manifest, edited.manifest, others, request.image);
  if (foreign) throw new ManifestAddRefusedError(`refused: ${foreign}`);
  const conflicts = newConflicts(
    findTagConflicts([...others, edited.manifest]),
    options.project,
    edit.changes,
  );
  if (conflicts.length > 0) {
    const lines = conflicts.map((conflict) => {
      const elsewhere = conflict.claims.filter(
        (claim) =>
          !(
            claim.project === options.project && edit.changes.some((change) => change.digest === claim.digest)
          ),
      );
      const where = elsewhere.map(
        (claim) => `${claim.digest} at ${formatPosition(claim.position)} (project ${claim.project})`,
      );
      return `${conflict.destination}:${conflict.tag} already points at ${where.join(", ")}`;
    });
    throw new ManifestAddRefusedError(
      `refused: ${lines.join("; ")}. A destination tag points at one digest; choose a new tag.`,
    );
  }
  if (!options.dryRun) {
    try {
      await tree.writeAtomically(imagesFile, edit.text);
    } catch (error) {
      if (error instanceof TreeFileRefusedError)
        throw refusedInTree(error.path, error.refusal, options.cwd, "written");
      throw error;
    }
  }
  return { ...result, written: !options.dryRun };
}

function refusedInTree(
  file: string,
  refusal: TreeFileRefusal,
  cwd: string,
  verb: "read" | "written",
): ManifestAddRefusedError {
  return new ManifestAddRefusedError(
    `${escapeExcerpt(path.relative(cwd, file))}: ${describeTreeFileRefusal(refusal, "the manifest tree", verb)}`,
  );
}

/** A file of the tree as text; undefined when it does not exist. */
async function readTreeText(tree: ManifestTree, file: string, cwd: string): Promise<string | undefined> {
  let read;
  try {
    read = await tree.read(file, { maxBytes: MAX_MANIFEST_FILE_BYTES });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  if (read.kind === "refused") throw refusedInTree(file, read.refusal, cwd, "read");
  return read.bytes.toString("utf8");
}
/**
 * Why `image` may not be added to the project: it lands in a repository of another project, or
 * one that several projects sharing a destination list (src/manifest/ownership.ts). Both the tree
 * as it is (the set's findings at the image's entries) and the tree after the edit are judged.
 */
function ownershipRefusal(
  findings: readonly Finding[],
  original: PromotionManifest,
  edited: PromotionManifest,
  others: readonly PromotionManifest[],
  image: RepositoryPath,
): string | undefined {
  const at = (manifest: PromotionManifest) =>
    new Set(
      manifest.images.filter((entry) => entry.name === image).map((entry) => formatPosition(entry.position)),
    );
  const before = at(original);
  const after = at(edited);
  const found =
    findings.find(
      (finding) => OWNERSHIP_RULES.has(finding.rule) && before.has(formatPosition(finding.position)),
    ) ??
    applyRepositoryOwnership([...others, edited], { realDirectory }).findings.find((finding) =>
      after.has(formatPosition(finding.position)),
    );
  return found === undefined ? undefined : `${formatPosition(found.position)}: ${found.message}`;
}

const OWNERSHIP_RULES: ReadonlySet<string> = new Set(["foreign-repository", "disputed-repository"]);

/** The edited model must be the original plus exactly the changes: anything else is a bug. */
function verifyEdit(
  original: PromotionManifest,
  edited: PromotionManifest,
  changes: readonly ImagesFileChange[],
  file: string,
): void {
  const triples = (manifest: PromotionManifest): Set<string> => {
    const result = new Set<string>();
    for (const image of mergeImages(manifest)) {
      for (const digest of image.digests) {
        result.add(`${image.name}@${digest.digest}`);
        for (const tag of digest.tags) result.add(`${image.name}@${digest.digest}:${tag.tag}`);
      }
    }
    return result;
  };
  const expected = triples(original);
  for (const change of changes) {
    expected.add(`${change.image}@${change.digest}`);
    for (const tag of change.addedTags) expected.add(`${change.image}@${change.digest}:${tag}`);
  }
  const actual = triples(edited);
  const same = actual.size === expected.size && [...actual].every((entry) => expected.has(entry));
  if (!same) {
    throw new PromoterError(
      "internal",
      `${file}: the edit does not read back as intended; nothing was written`,
    );
  }
}

/** Conflicts that a new claim of this change takes part in (older conflicts are not ours to judge). */
function newConflicts(
  conflicts: readonly TagConflict[],
  project: string,
  changes: readonly ImagesFileChange[],
): TagConflict[] {
  return conflicts.filter((conflict) =>
    changes.some(
      (change) =>
        change.addedTags.includes(conflict.tag) &&
        conflict.claims.some(
          (claim) =>
            claim.project === project && claim.image === change.image && claim.digest === change.digest,
        ),
    ),
  );
}
