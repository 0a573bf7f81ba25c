import * as path from "node:path";
import { isScalar, Scalar, type ParsedNode, type YAMLMap } from "yaml";
import {
  digestProblem,
  ATTACHMENT_TAG_NAMES,
  formatDigestInTag,
  isDigest,
  isTag,
  MAX_NAME_LENGTH,
  OCI_LAYOUT_PREFIX,
  parseAttachmentTag,
  parseRegistryLocation,
  registryLocationProblem,
  repositoryPathProblem,
  tagProblem,
  type Digest,
  type RegistryLocation,
  type RepositoryPath,
  type Tag,
} from "../reference/index.js";
import { escapeExcerpt, quoteExcerpt } from "../excerpt.js";
import { makeFinding } from "./finding.js";
import type {
  DigestEntry,
  Finding,
  ImageEntry,
  PromotionManifest,
  RegistryEntry,
  SourcePosition,
  TagEntry,
} from "./model.js";
import { ManifestReader } from "./reader.js";
import { parseYamlSource, readSequenceItems, readWithinLimits } from "./yaml-source.js";

/**
 * Parsing of kpromo promotion manifests into the typed model. Pure: text in, model and findings
 * out. Reading files is the loader's job (manifest-files/load.ts).
 *
 * Formats (https://github.com/kubernetes-sigs/promo-tools, `Manifest` and `ThinManifest`):
 *   plain manifest:  {registries: [{name, src, service-account}], images: [{name, dmap}]}
 *   thin manifest:   manifests/<project>/promoter-manifest.yaml holds {registries} and
 *                    images/<project>/images.yaml holds the bare list of images.
 */

/** The text of one file and the name findings use for it. */
export interface ManifestText {
  readonly file: string;
  readonly text: string;
}

export interface ParsedPromotionManifest {
  /** Undefined when the file holding `registries:` could not be parsed at all. */
  readonly manifest: PromotionManifest | undefined;
  readonly findings: readonly Finding[];
}

/** Characters of a digest that name it in a message: `sha256:` and 12 hex digits. */
const DIGEST_PREFIX_CHARS = 19;
const PLAIN_MANIFEST_KEYS = ["registries", "images"] as const;
const THIN_MANIFEST_KEYS = ["registries", "imagesPath"] as const;
const REGISTRY_KEYS = ["name", "src", "service-account"] as const;
const IMAGE_KEYS = ["name", "dmap"] as const;
/** `src:` spellings that YAML 1.2 and YAML 1.1 readers agree on. */
const BOOLEAN_SPELLINGS: ReadonlyMap<string, boolean> = new Map([
  ["true", true],
  ["True", true],
  ["TRUE", true],
  ["false", false],
  ["False", false],
  ["FALSE", false],
]);
/**
 * The other YAML 1.1 booleans. kpromo reads manifests with go-yaml v2 (YAML 1.1), where an
 * unquoted `src: yes` is true and `src: off` false; a YAML 1.2 reader sees the strings. The
 * meaning is plain, so they are read as kpromo reads them, with a `kpromo-spelling` warning.
 */
const YAML_1_1_BOOLEAN_SPELLINGS: ReadonlyMap<string, boolean> = new Map([
  ...["y", "Y", "yes", "Yes", "YES", "on", "On", "ON"].map((text): [string, boolean] => [text, true]),
  ...["n", "N", "no", "No", "NO", "off", "Off", "OFF"].map((text): [string, boolean] => [text, false]),
]);

/** A plain manifest (`--manifest FILE`): registries and images in one file. */
export function parsePlainManifest(input: ManifestText): ParsedPromotionManifest {
  const findings: Finding[] = [];
  const project = path.basename(input.file).replace(/\.[^.]*$/, "");
  const { source, findings: yamlFindings } = parseYamlSource(input.text, input.file);
  findings.push(...yamlFindings);
  if (!source) return { manifest: undefined, findings };
  const reader = new ManifestReader(source, findings);
  const read = readWithinLimits(source, findings, () => {
    let registries: RegistryEntry[] = [];
    let images: ImageEntry[] = [];
    const root = reader.resolve(source.root);
    if (!reader.isNull(root) && root !== undefined) {
      const map = reader.mapping(root, "a promotion manifest");
      if (map) {
        const fields = reader.fields(map, PLAIN_MANIFEST_KEYS, "the manifest");
        registries = readRegistries(reader, fields.get("registries")?.value);
        images = readImageList(reader, fields.get("images")?.value, "images");
      }
    }
    return { registries, images: withinNameLimits(findings, images, registries) };
  });
  if (!read) return { manifest: undefined, findings };
  return { manifest: { project, file: input.file, ...read }, findings };
}

/**
 * One project of a thin-manifest tree. `imagesInput` is undefined when the project has no
 * images file (reported as `missing-images-file` at the manifest). The manifest is undefined
 * when its registries file cannot be parsed; the images file's findings are still reported.
 */
export function parseThinManifest(
  project: string,
  manifestInput: ManifestText,
  imagesInput: ManifestText | undefined,
): ParsedPromotionManifest {
  const findings: Finding[] = [];
  const { source, findings: yamlFindings } = parseYamlSource(manifestInput.text, manifestInput.file);
  findings.push(...yamlFindings);
  let registries: RegistryEntry[] | undefined;
  if (source) {
    const reader = new ManifestReader(source, findings);
    registries = readWithinLimits(source, findings, () => {
      const root = reader.resolve(source.root);
      if (reader.isNull(root) || root === undefined) return [];
      const map = reader.mapping(root, "a thin promoter manifest");
      if (!map) return [];
      const fields = reader.fields(map, THIN_MANIFEST_KEYS, "the manifest");
      const imagesPath = fields.get("imagesPath");
      if (imagesPath) {
        reader.report(
          "deprecated-key",
          imagesPath.keyPosition,
          `imagesPath is deprecated and ignored: the images are read from images/${escapeExcerpt(project)}/images.yaml`,
        );
      }
      return readRegistries(reader, fields.get("registries")?.value);
    });
  }

  let images: ImageEntry[] = [];
  if (imagesInput === undefined) {
    findings.push(
      makeFinding(
        "missing-images-file",
        { file: manifestInput.file, line: 1, column: 1 },
        `project ${quoteExcerpt(project)} has no images file images/${escapeExcerpt(project)}/images.yaml`,
      ),
    );
  } else {
    images = readImagesFile(imagesInput, findings);
    if (registries) images = withinNameLimits(findings, images, registries);
  }
  if (!registries) return { manifest: undefined, findings };
  return {
    manifest: {
      project,
      file: manifestInput.file,
      ...(imagesInput === undefined ? {} : { imagesFile: imagesInput.file }),
      registries,
      images,
    },
    findings,
  };
}

/** A thin tree's images file: a bare list of images, read item by item when it can be. */
function readImagesFile(input: ManifestText, findings: Finding[]): ImageEntry[] {
  const images: ImageEntry[] = [];
  const findingsBefore = findings.length;
  const itemByItem = readSequenceItems(input.text, input.file, ({ source, node }) => {
    const entry = readImage(new ManifestReader(source, findings), node);
    if (entry) images.push(entry);
  });
  if (itemByItem) return images;
  findings.length = findingsBefore;
  const parsed = parseYamlSource(input.text, input.file);
  findings.push(...parsed.findings);
  const source = parsed.source;
  if (!source) return [];
  const reader = new ManifestReader(source, findings);
  return (
    readWithinLimits(source, findings, () =>
      readImageList(reader, reader.resolve(source.root), "the images file"),
    ) ?? []
  );
}

/** The usable entries of a list; an empty value is an empty list. */
function readList<T>(
  reader: ManifestReader,
  node: ParsedNode | undefined,
  what: string,
  readItem: (reader: ManifestReader, node: ParsedNode | undefined) => T | undefined,
): T[] {
  if (node === undefined || reader.isNull(node)) return [];
  const list = reader.sequence(node, what);
  if (!list) return [];
  const entries: T[] = [];
  for (const item of list.items) {
    const entry = readItem(reader, reader.resolve(item));
    if (entry) entries.push(entry);
  }
  return entries;
}

function readRegistries(reader: ManifestReader, node: ParsedNode | undefined): RegistryEntry[] {
  return readList(reader, node, "registries", readRegistry);
}

function readRegistry(reader: ManifestReader, node: ParsedNode | undefined): RegistryEntry | undefined {
  // A dangling alias reads as undefined and is already reported.
  if (node === undefined) return undefined;
  const map = reader.mapping(node, "a registry entry");
  if (!map) return undefined;
  const position = reader.positionOf(map);
  const fields = reader.fields(map, REGISTRY_KEYS, "a registry entry");
  const nameField = fields.get("name");
  let valid = true;
  let src = false;
  const srcField = fields.get("src");
  if (srcField) {
    const spelled = readSrc(reader, srcField.value);
    if (spelled === undefined) {
      reader.report(
        "invalid-type",
        srcField.value ?? srcField.keyPosition,
        `src must be true or false (unquoted), found ${reader.describe(srcField.value)}`,
      );
      valid = false;
    } else {
      src = spelled;
    }
  }
  let serviceAccount: string | undefined;
  const accountField = fields.get("service-account");
  if (accountField) {
    const account = reader.string(accountField.value, "service-account", accountField.keyPosition);
    if (account) serviceAccount = account.value;
    else valid = false;
  }
  if (!nameField) {
    reader.report("missing-field", position, "a registry entry has no name");
    return undefined;
  }
  const name = reader.string(nameField.value, "a registry name", nameField.keyPosition);
  if (!name) return undefined;
  const meant = withoutTrailingSlashes(name.value);
  const problem = registryLocationProblem(meant);
  let location: RegistryLocation | undefined;
  if (problem) {
    reader.report(
      "invalid-registry-name",
      name.position,
      `invalid registry name ${quoteExcerpt(name.value)}: ${problem}`,
    );
  } else {
    location = resolveLocation(parseRegistryLocation(meant), reader.source.file);
    if (meant !== name.value) {
      reader.report(
        "kpromo-spelling",
        name.position,
        `registry name ${quoteExcerpt(name.value)} ends with /: it is read as ${quoteExcerpt(meant)}`,
        { hint: `Write ${quoteExcerpt(meant)}, without the trailing /.` },
      );
    }
  }
  if (!valid) return undefined;
  return {
    name: meant,
    location,
    src,
    ...(serviceAccount === undefined ? {} : { serviceAccount }),
    position: name.position,
  };
}

/**
 * The value of `src:`, or undefined when it is not a boolean. A YAML 1.1 spelling (`yes`, `on`,
 * `y`…, unquoted and untagged) is read as kpromo reads it and reported as `kpromo-spelling`.
 * Quoted text and an empty value stay errors: kpromo refuses the first, and reads the second as
 * false where its author may have meant anything.
 */
function readSrc(reader: ManifestReader, value: ParsedNode | undefined): boolean | undefined {
  if (value === undefined || !isScalar(value) || value.type !== Scalar.PLAIN) return undefined;
  const written = String(value.value);
  const canonical = BOOLEAN_SPELLINGS.get(written);
  if (canonical !== undefined) return canonical;
  const legacy = value.tag === undefined ? YAML_1_1_BOOLEAN_SPELLINGS.get(written) : undefined;
  if (legacy === undefined) return undefined;
  reader.report(
    "kpromo-spelling",
    value,
    `src: ${written} is read as ${String(legacy)}, as kpromo's YAML 1.1 reader reads it; a YAML 1.2 reader sees the string "${written}"`,
    { hint: `Write src: ${String(legacy)}.` },
  );
  return legacy;
}

/**
 * A registry name without the trailing slashes that kpromo lets through (`gcr.io/staging/`):
 * the name meant is plain, and every rule and request then uses that one spelling. An `oci:`
 * directory is left as written (its key drops trailing slashes already).
 */
function withoutTrailingSlashes(name: string): string {
  if (name.startsWith(OCI_LAYOUT_PREFIX)) return name;
  const trimmed = name.replace(/\/+$/, "");
  return trimmed.length === 0 ? name : trimmed;
}

/**
 * `oci:DIR` names a directory relative to the file that names it, so a tree can be moved and
 * run from anywhere; the loader passes absolute file names, which makes the directory absolute.
 */
function resolveLocation(location: RegistryLocation, file: string): RegistryLocation {
  if (location.kind !== "oci-layout") return location;
  const directory = path.isAbsolute(location.directory)
    ? path.normalize(location.directory)
    : path.join(path.dirname(file), location.directory);
  return { kind: "oci-layout", directory, name: location.name };
}

function readImageList(reader: ManifestReader, node: ParsedNode | undefined, what: string): ImageEntry[] {
  return readList(reader, node, what, readImage);
}

function readImage(reader: ManifestReader, node: ParsedNode | undefined): ImageEntry | undefined {
  if (node === undefined) return undefined;
  const map = reader.mapping(node, "an image entry");
  if (!map) return undefined;
  const position = reader.positionOf(map);
  const fields = reader.fields(map, IMAGE_KEYS, "an image entry");
  let valid = true;
  let name: RepositoryPath | undefined;
  let label = "this image";
  const nameField = fields.get("name");
  if (!nameField) {
    reader.report("missing-field", position, "an image entry has no name");
    valid = false;
  } else {
    const located = reader.string(nameField.value, "an image name", nameField.keyPosition);
    if (!located) {
      valid = false;
    } else {
      label = `image ${quoteExcerpt(located.value)}`;
      const problem = repositoryPathProblem(located.value);
      if (problem) {
        reader.report(
          "invalid-image-name",
          located.position,
          `invalid image name ${quoteExcerpt(located.value)}: ${problem}`,
        );
        valid = false;
      } else {
        name = located.value as RepositoryPath;
      }
    }
  }
  const dmapField = fields.get("dmap");
  let digests: DigestEntry[] = [];
  if (!dmapField) {
    if (nameField) reader.report("empty-dmap", position, `${label} has no dmap: it promotes nothing`);
  } else if (reader.isNull(dmapField.value) || dmapField.value === undefined) {
    reader.report("empty-dmap", dmapField.keyPosition, `the dmap of ${label} is empty: it promotes nothing`);
  } else {
    const dmap = reader.mapping(dmapField.value, `the dmap of ${label}`);
    if (!dmap) {
      valid = false;
    } else if (dmap.items.length === 0) {
      reader.report(
        "empty-dmap",
        dmapField.keyPosition,
        `the dmap of ${label} is empty: it promotes nothing`,
      );
    } else {
      digests = readDmap(reader, dmap, label);
    }
  }
  if (!valid || name === undefined) return undefined;
  return { name, digests, position };
}

function readDmap(reader: ManifestReader, dmap: YAMLMap.Parsed, label: string): DigestEntry[] {
  const digests: DigestEntry[] = [];
  for (const field of reader.pairs(dmap, `the dmap of ${label}`)) {
    let valid = true;
    const problem = isDigest(field.name) ? undefined : (digestProblem(field.name) ?? "not a digest");
    if (problem) {
      reader.report(
        "invalid-digest",
        field.keyPosition,
        `invalid digest ${quoteExcerpt(field.name)} in ${label}: ${problem}`,
      );
      valid = false;
    }
    const tags = readTags(reader, field.value, field.keyPosition, field.name, label);
    if (!tags) valid = false;
    if (valid && tags) {
      digests.push({ digest: field.name as Digest, tags, position: field.keyPosition });
    }
  }
  return digests;
}

/**
 * The tags of one digest; undefined when any is invalid, so that a digest is never promoted
 * with fewer tags (or none) than the reviewer approved.
 */
function readTags(
  reader: ManifestReader,
  node: ParsedNode | undefined,
  at: SourcePosition,
  digest: string,
  label: string,
): TagEntry[] | undefined {
  if (node === undefined || reader.isNull(node)) return [];
  const list = reader.sequence(node, `the tags of ${escapeExcerpt(digest, DIGEST_PREFIX_CHARS)} in ${label}`);
  if (!list) return undefined;
  const tags: TagEntry[] = [];
  let valid = true;
  for (const item of list.items) {
    const resolved = reader.resolve(item);
    const located = reader.string(resolved, "a tag", at);
    if (!located) {
      valid = false;
      continue;
    }
    const attachment = isTag(located.value) ? attachmentTagProblem(located.value) : undefined;
    const problem = isTag(located.value) ? attachment : (tagProblem(located.value) ?? "not a tag");
    if (problem) {
      reader.report(
        "invalid-tag",
        located.position,
        `invalid tag ${quoteExcerpt(located.value)} in ${label}: ${problem}`,
        attachment === undefined ? {} : { hint: ATTACHMENT_TAG_HINT },
      );
      valid = false;
      continue;
    }
    tags.push({ tag: located.value as Tag, position: located.position });
  }
  return valid ? tags : undefined;
}

/** The hint of an `invalid-tag` finding for an attachment tag. */
export const ATTACHMENT_TAG_HINT =
  "Give the image a tag of its own; signatures, attestations and SBOMs follow the digest (docs/signing.md).";

/**
 * Why a manifest may not name `tag`: the tags of the attachment layouts (cosign's
 * `sha256-<hex>.sig`, `.att`, `.sbom`, and the referrers fallback `sha256-<hex>`) belong to what
 * signers and the promoter attach to a digest. Promoted as an image tag, such an entry would
 * replace production's signatures or attestations of that digest with whatever staging holds.
 */
export function attachmentTagProblem(tag: string): string | undefined {
  const attached = parseAttachmentTag(tag);
  if (!attached) return undefined;
  return `it is the ${ATTACHMENT_TAG_NAMES[attached.kind]} tag of ${formatDigestInTag(attached.subject)}, which only signers and the promoter write, never a manifest`;
}

/**
 * The reference grammar limits a whole name (host and path) to 255 characters; an image that
 * fits at the source may not fit under a deeper destination prefix.
 */
function withinNameLimits(
  findings: Finding[],
  images: ImageEntry[],
  registries: readonly RegistryEntry[],
): ImageEntry[] {
  let longest = "";
  for (const registry of registries) {
    if (registry.location?.kind === "remote" && registry.name.length > longest.length)
      longest = registry.name;
  }
  if (longest.length === 0) return images;
  return images.filter((image) => {
    const length = longest.length + 1 + image.name.length;
    if (length <= MAX_NAME_LENGTH) return true;
    findings.push(
      makeFinding(
        "invalid-image-name",
        image.position,
        `image ${quoteExcerpt(image.name)} under registry ${quoteExcerpt(longest)} makes a name of ${length} characters (at most ${MAX_NAME_LENGTH})`,
      ),
    );
    return false;
  });
}
