import { isJsonObject } from "../../json-shape.js";
import { describeError } from "../../errors.js";
import { MediaType, parseDescriptor, type Descriptor } from "../../oci/index.js";
import { isTag, type Digest, type Tag } from "../../reference/index.js";

/**
 * The `index.json` of an OCI image layout as data: its entries (descriptors, tagged through the
 * `org.opencontainers.image.ref.name` annotation), with pure functions to find and change them.
 * Unknown fields of the file and of each entry are kept as they were when it is written back.
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/image-layout.md#indexjson-file
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/annotations.md#pre-defined-annotation-keys
 */

export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

export interface LayoutIndexEntry {
  readonly descriptor: Descriptor;
  /** The ref.name annotation, when present. */
  readonly refName?: string;
  /** The entry exactly as read (or as we made it), for writing back unchanged. */
  readonly raw: Readonly<Record<string, unknown>>;
}

export interface LayoutIndex {
  /** Top-level fields other than `manifests`, kept as read. */
  readonly fields: Readonly<Record<string, unknown>>;
  readonly entries: readonly LayoutIndexEntry[];
}

/** A malformed or hostile index.json; the store turns it into a `layout-invalid` RegistryError. */
export class LayoutIndexProblem extends Error {}

/**
 * Why a ref.name is refused outright, or undefined. Names that are not tags (the OCI grammar
 * allows `/`, `:` and `@`) are kept but are not tags; names that look like attempts to reach
 * other files, or that carry control characters, make the whole layout suspect.
 */
export function refNameProblem(name: string): string | undefined {
  if (name.length === 0) return "empty ref.name";
  // eslint-disable-next-line no-control-regex -- control characters are what we look for
  if (/[\u0000-\u001f\u007f]/.test(name))
    return `ref.name ${JSON.stringify(name)} contains control characters`;
  if (name.startsWith("/") || name.includes("\\"))
    return `ref.name ${JSON.stringify(name)} looks like a path`;
  if (name.split("/").some((part) => part === ".." || part === ".")) {
    return `ref.name ${JSON.stringify(name)} contains a "." or ".." path segment`;
  }
  return undefined;
}

export function emptyLayoutIndex(): LayoutIndex {
  return { fields: { schemaVersion: 2, mediaType: MediaType.ociImageIndex }, entries: [] };
}

export function parseLayoutIndex(bytes: Uint8Array): LayoutIndex {
  let document: unknown;
  try {
    document = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    throw new LayoutIndexProblem(`index.json is not UTF-8 JSON: ${describeError(error)}`);
  }
  if (!isJsonObject(document)) throw new LayoutIndexProblem("index.json must be a JSON object");
  if (document.schemaVersion !== 2) {
    throw new LayoutIndexProblem(
      `index.json has schemaVersion ${JSON.stringify(document.schemaVersion)}, not 2`,
    );
  }
  const manifests = document.manifests ?? [];
  if (!Array.isArray(manifests)) throw new LayoutIndexProblem("index.json manifests must be a list");
  const entries = manifests.map((raw: unknown, position): LayoutIndexEntry => {
    let descriptor: Descriptor;
    try {
      descriptor = parseDescriptor(raw, `index.json manifests[${position}]`);
    } catch (error) {
      throw new LayoutIndexProblem(describeError(error));
    }
    const refName = descriptor.annotations?.[REF_NAME_ANNOTATION];
    if (refName !== undefined) {
      const problem = refNameProblem(refName);
      if (problem) throw new LayoutIndexProblem(`index.json manifests[${position}]: ${problem}`);
    }
    return { descriptor, ...(refName !== undefined ? { refName } : {}), raw: raw as Record<string, unknown> };
  });
  const { manifests: _manifests, ...fields } = document;
  return { fields, entries };
}

export function serializeLayoutIndex(index: LayoutIndex): Uint8Array {
  const document = {
    schemaVersion: 2,
    mediaType: MediaType.ociImageIndex,
    ...index.fields,
    manifests: index.entries.map((entry) => entry.raw),
  };
  return new TextEncoder().encode(JSON.stringify(document));
}

/** The entry a tag names; when a broken file names it twice, the last one wins. */
export function findTagged(index: LayoutIndex, tag: Tag): LayoutIndexEntry | undefined {
  return index.entries.findLast((entry) => entry.refName === tag);
}

export function findByDigest(index: LayoutIndex, digest: Digest): LayoutIndexEntry | undefined {
  return index.entries.find((entry) => entry.descriptor.digest === digest);
}

/** Tags in the layout (ref.names that are valid tags), sorted, each once. */
export function tagsOf(index: LayoutIndex): Tag[] {
  const tags = new Set<Tag>();
  for (const entry of index.entries) {
    if (entry.refName !== undefined && isTag(entry.refName)) tags.add(entry.refName);
  }
  return [...tags].sort();
}

function entryFor(descriptor: Descriptor, refName: string | undefined): LayoutIndexEntry {
  const raw: Record<string, unknown> = {
    mediaType: descriptor.mediaType,
    digest: descriptor.digest,
    size: descriptor.size,
    ...(descriptor.artifactType !== undefined ? { artifactType: descriptor.artifactType } : {}),
    ...(descriptor.platform !== undefined ? { platform: descriptor.platform } : {}),
  };
  if (refName !== undefined) raw.annotations = { [REF_NAME_ANNOTATION]: refName };
  return { descriptor: raw as unknown as Descriptor, ...(refName !== undefined ? { refName } : {}), raw };
}

/**
 * Points `tag` at `descriptor`: removes the tag's old entries (the tag moves) and an untagged
 * entry of the same digest (now listed by name), appends one. One entry per name and no
 * untagged twin of a named manifest is what readers expect: oci-image-tool's `--ref name=T`
 * needs exactly one descriptor, and skopeo writes a layout that way.
 */
export function withTag(index: LayoutIndex, descriptor: Descriptor, tag: Tag): LayoutIndex {
  return {
    fields: index.fields,
    entries: [
      ...index.entries.filter(
        (entry) =>
          entry.refName !== tag &&
          !(entry.refName === undefined && entry.descriptor.digest === descriptor.digest),
      ),
      entryFor(descriptor, tag),
    ],
  };
}

/** Adds an untagged entry for `descriptor` unless some entry already lists its digest. */
export function withUntagged(index: LayoutIndex, descriptor: Descriptor): LayoutIndex {
  if (findByDigest(index, descriptor.digest)) return index;
  return { fields: index.fields, entries: [...index.entries, entryFor(descriptor, undefined)] };
}

/**
 * Removes the untagged entries of `digests` (the children of an index just listed: reachable
 * through it, as skopeo leaves them). Returns `index` itself when nothing changes.
 */
export function withoutUntagged(index: LayoutIndex, digests: ReadonlySet<Digest>): LayoutIndex {
  const entries = index.entries.filter(
    (entry) => entry.refName !== undefined || !digests.has(entry.descriptor.digest),
  );
  return entries.length === index.entries.length ? index : { fields: index.fields, entries };
}

/**
 * The index without redundant entries, as this promoter wrote them before (every tagged manifest
 * also listed untagged) or a broken file holds them: an untagged entry of a digest that another
 * entry lists, and all but the last entry of a name (the one `findTagged` reads). Applied to
 * every index.json written, so an older layout is repaired by its next write; reading never
 * needed it. Returns `index` itself when nothing changes.
 */
export function withoutRedundantEntries(index: LayoutIndex): LayoutIndex {
  const named = new Set<Digest>();
  const lastOfName = new Map<string, number>();
  index.entries.forEach((entry, position) => {
    if (entry.refName === undefined) return;
    named.add(entry.descriptor.digest);
    lastOfName.set(entry.refName, position);
  });
  const untaggedSeen = new Set<Digest>();
  const entries = index.entries.filter((entry, position) => {
    if (entry.refName !== undefined) return lastOfName.get(entry.refName) === position;
    const digest = entry.descriptor.digest;
    if (named.has(digest) || untaggedSeen.has(digest)) return false;
    untaggedSeen.add(digest);
    return true;
  });
  return entries.length === index.entries.length ? index : { fields: index.fields, entries };
}

/**
 * The entries no tag names: without a name (held by digest only), or with a name that is no tag
 * (a full reference such as `example.com/app:1.0`, which some tools write).
 */
export function untaggedEntries(index: LayoutIndex): LayoutIndexEntry[] {
  return index.entries.filter((entry) => entry.refName === undefined || !isTag(entry.refName));
}

/**
 * The reference grammar of the `org.opencontainers.image.ref.name` annotation
 * (https://github.com/opencontainers/image-spec/blob/v1.1.0/annotations.md#pre-defined-annotation-keys):
 * components of alphanumerics joined by one separator (`-._:@+` or `--`), joined by `/`. Every
 * tag of the distribution spec that starts with a letter or digit and has no doubled separators
 * fits; a tag such as `_x`, `v1-` or `a..b` is a valid tag but not a portable name, and skopeo
 * refuses `oci:DIR:_x`.
 */
const REF_NAME_GRAMMAR =
  /^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$/;

export function isPortableRefName(name: string): boolean {
  return REF_NAME_GRAMMAR.test(name);
}

/** Removes every entry (tagged or not) for `digest`. */
export function withoutDigest(index: LayoutIndex, digest: Digest): LayoutIndex {
  return {
    fields: index.fields,
    entries: index.entries.filter((entry) => entry.descriptor.digest !== digest),
  };
}
