import type { Digest, Tag } from "../reference/index.js";

/**
 * A registry inventory as text, byte for byte as kpromo prints it (kpromo's `RegInvImage`
 * `ToSorted`, `ToYAML` and `ToCSV`, promoter/image/registry/types.go), and kpromo's tag filter
 * (`FilterByTag`, promoter/image/promotion/edge.go). Pure: the snapshot commands read the
 * registry or the manifests, these only sort, filter and print.
 *
 * Image names, digests and tags here are validated names (no quotes, no control or non-ASCII
 * characters), so JSON's string quoting is Go's `%q` for them, and code-unit order is Go's byte
 * order.
 */

/** One digest of an inventory with the tags that point at it (none for a tagless entry). */
export interface InventoryDigest {
  readonly digest: Digest;
  readonly tags: readonly Tag[];
}

/** One image (repository path below the snapshot's registry) and its digests. */
export interface InventoryImage {
  readonly name: string;
  readonly digests: readonly InventoryDigest[];
}

/** The outputs of `promoter snapshot` and `kpromo cip --snapshot`: kpromo's YAML and CSV. */
export const SNAPSHOT_OUTPUTS = ["yaml", "csv"] as const;
export type SnapshotOutput = (typeof SNAPSHOT_OUTPUTS)[number];

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * kpromo's `ToSorted`: images by name, each image's digests by digest, each digest's tags in
 * byte order. Repeated image names, digests or tags are merged (kpromo keys them in maps, so it
 * never has any): the result is the same whatever order the input came in.
 */
export function sortInventory(images: readonly InventoryImage[]): InventoryImage[] {
  const byName = new Map<string, Map<Digest, Set<Tag>>>();
  for (const image of images) {
    let digests = byName.get(image.name);
    if (!digests) byName.set(image.name, (digests = new Map<Digest, Set<Tag>>()));
    for (const entry of image.digests) {
      let tags = digests.get(entry.digest);
      if (!tags) digests.set(entry.digest, (tags = new Set()));
      for (const tag of entry.tags) tags.add(tag);
    }
  }
  return [...byName]
    .sort(([a], [b]) => compareText(a, b))
    .map(([name, digests]) => ({
      name,
      digests: [...digests]
        .sort(([a], [b]) => compareText(a, b))
        .map(([digest, tags]) => ({ digest, tags: [...tags].sort(compareText) })),
    }));
}

/**
 * kpromo's `ToYAML` (default options): `- name: N`, `  dmap:`, then one line per digest, the
 * digest quoted, its tags quoted in a flow list (`[]` when it has none). An empty inventory is
 * the empty string (kpromo prints nothing but `fmt.Println`'s newline).
 */
export function inventoryYaml(images: readonly InventoryImage[]): string {
  let text = "";
  for (const image of sortInventory(images)) {
    text += `- name: ${image.name}\n  dmap:\n`;
    for (const entry of image.digests) {
      text += `    ${JSON.stringify(entry.digest)}: [${entry.tags.map((tag) => JSON.stringify(tag)).join(", ")}]\n`;
    }
  }
  return text;
}

/**
 * kpromo's `ToCSV`: no header; one line per tag, `name@digest,name:tag`; `name@digest,-` for a
 * digest without tags. Sorted as `ToYAML`.
 */
export function inventoryCsv(images: readonly InventoryImage[]): string {
  let text = "";
  for (const image of sortInventory(images)) {
    for (const entry of image.digests) {
      const reference = `${image.name}@${entry.digest}`;
      if (entry.tags.length === 0) text += `${reference},-\n`;
      for (const tag of entry.tags) text += `${reference},${image.name}:${tag}\n`;
    }
  }
  return text;
}

/**
 * What `promoter snapshot` prints: kpromo's YAML or CSV. An empty YAML snapshot is `[]` (a valid
 * images.yaml, where kpromo prints an empty line); see `kpromoSnapshotStdout` for kpromo's bytes.
 */
export function snapshotText(images: readonly InventoryImage[], output: SnapshotOutput): string {
  if (output === "csv") return inventoryCsv(images);
  return images.length === 0 ? "[]\n" : inventoryYaml(images);
}

/** kpromo's YAML as `promoter snapshot` prints it: `[]` when empty. */
export function snapshotYaml(images: readonly InventoryImage[]): string {
  return snapshotText(images, "yaml");
}

/**
 * The exact standard output of `kpromo cip --snapshot` / `--manifest-based-snapshot-of`: the
 * text, then the newline of `fmt.Println` (so a non-empty snapshot ends with an empty line, and an
 * empty one is a single newline).
 */
export function kpromoSnapshotStdout(images: readonly InventoryImage[], output: SnapshotOutput): string {
  return `${output === "csv" ? inventoryCsv(images) : inventoryYaml(images)}\n`;
}

/**
 * kpromo's `FilterByTag`, for one or more tags: keeps the digests that carry one of `tags`, each
 * with all of its tags, and the images that keep a digest. Tagless digests never match. No tags:
 * no filter.
 */
export function filterByTags<Image extends InventoryImage>(
  images: readonly Image[],
  tags: readonly string[],
): Image[] {
  if (tags.length === 0) return [...images];
  const wanted = new Set(tags);
  const kept: Image[] = [];
  for (const image of images) {
    const digests = image.digests.filter((entry) => entry.tags.some((tag) => wanted.has(tag)));
    if (digests.length > 0) kept.push({ ...image, digests });
  }
  return kept;
}

/**
 * `--minimal`: leaves out tagless digests that are children of an index (promoting the index
 * brings them), given the children each image's repository holds, and the images left empty.
 */
export function dropTaglessChildren<Image extends InventoryImage>(
  images: readonly Image[],
  childrenOf: (image: Image) => ReadonlySet<Digest>,
): Image[] {
  const kept: Image[] = [];
  for (const image of images) {
    const children = childrenOf(image);
    const digests = image.digests.filter((entry) => entry.tags.length > 0 || !children.has(entry.digest));
    if (digests.length > 0) kept.push({ ...image, digests });
  }
  return kept;
}
