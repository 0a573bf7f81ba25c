import type { Descriptor } from "../oci/index.js";
import type { Digest, Tag } from "../reference/index.js";
import type { CopySourceStore } from "../copy/index.js";
import type { BlobReader, ManifestContent } from "../registry/index.js";
import type { KeptLayer, WorkItem } from "./attachment-plan.js";
import type { PlannedBlob } from "./blob-io.js";
import { buildLayerSet, containsLayers, layerKey, mergeLayers } from "./cosign-format.js";

/**
 * Pure decisions for what is attached to one subject, from what was observed. The rule that
 * keeps mirrors byte-identical: the canonical `.sig` (or `.att`) manifest is computed once from
 * the union of every signature found (staging and all destinations), and those exact bytes are
 * written wherever they are missing.
 * - When one existing manifest already holds the whole union, its bytes are the canonical ones
 *   (preferring the one most destinations hold), so a converged set of mirrors is never
 *   rewritten.
 * - Otherwise a new manifest is built from the union: the layers of the manifest most
 *   destinations hold, in their order, then staging's, then the other destinations' (in order of
 *   digest), each signature once. Deterministic for a given observed state.
 * - When our signature is missing from the union, it is made once and appended; the result goes
 *   to every destination.
 * Signatures of other signers are never dropped.
 */

/** A `.sig` or `.att` manifest that was read, and the store it was read from. */
export interface ObservedLayerSet {
  readonly content: ManifestContent;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly from: BlobReader;
}

export type TagState =
  | { readonly kind: "absent" }
  | { readonly kind: "present"; readonly digest: Digest }
  | { readonly kind: "unreadable"; readonly message: string };

export interface DestinationTagState {
  readonly key: string;
  readonly state: TagState;
}

export interface LayerSetInput {
  readonly kind: "sig" | "att";
  readonly tag: Tag;
  /** What staging has under the tag, when attachments are carried. */
  readonly source?: ObservedLayerSet;
  readonly destinations: readonly DestinationTagState[];
  /**
   * The tag at the subject's destinations outside the run's scope (read because no destination
   * in scope held our signature): they count as holders and their layers join the union, so the
   * manifest they hold is chosen as a full run would choose it, but nothing is written to them.
   */
  readonly elsewhere?: readonly DestinationTagState[];
  /** Every manifest a destination (or one `elsewhere`) holds under the tag, by digest. */
  readonly manifests: ReadonlyMap<Digest, ObservedLayerSet>;
  /** The identities whose signature (ours) the union lacks; empty when not signing. */
  readonly missingIdentities: (union: readonly Descriptor[]) => readonly string[];
}

function compareDigests(a: Digest, b: Digest): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function decideLayerSet(input: LayerSetInput): WorkItem | undefined {
  const unreadable: { key: string; message: string }[] = [];
  const holders = new Map<Digest, number>();
  const readable: DestinationTagState[] = [];
  for (const destination of input.destinations) {
    if (destination.state.kind === "unreadable") {
      unreadable.push({ key: destination.key, message: destination.state.message });
      continue;
    }
    readable.push(destination);
    if (destination.state.kind === "present") {
      holders.set(destination.state.digest, (holders.get(destination.state.digest) ?? 0) + 1);
    }
  }
  for (const destination of input.elsewhere ?? []) {
    if (destination.state.kind === "present") {
      holders.set(destination.state.digest, (holders.get(destination.state.digest) ?? 0) + 1);
    }
  }
  /** The manifest most destinations hold first; ties in order of digest. */
  const byHolders = (a: ObservedLayerSet, b: ObservedLayerSet): number =>
    (holders.get(b.content.digest) ?? 0) - (holders.get(a.content.digest) ?? 0) ||
    compareDigests(a.content.digest, b.content.digest);
  const held = [...holders.keys()]
    .map((digest) => input.manifests.get(digest))
    .filter((manifest): manifest is ObservedLayerSet => manifest !== undefined)
    .sort(byHolders);
  const [base, ...others] = held;
  const ordered: ObservedLayerSet[] = [];
  for (const manifest of [
    base,
    input.source,
    ...others.sort((a, b) => compareDigests(a.content.digest, b.content.digest)),
  ]) {
    if (manifest && !ordered.some((seen) => seen.content.digest === manifest.content.digest))
      ordered.push(manifest);
  }
  const union = mergeLayers(ordered.map((manifest) => manifest.layers));
  const layerFrom = new Map<string, BlobReader>();
  for (const manifest of ordered) {
    for (const layer of manifest.layers) {
      const key = layerKey(layer);
      if (!layerFrom.has(key)) layerFrom.set(key, manifest.from);
    }
  }
  const kept = (layer: Descriptor, fallback: BlobReader): KeptLayer => ({
    descriptor: layer,
    from: layerFrom.get(layerKey(layer)) ?? fallback,
  });
  const common = { kind: input.kind, tag: input.tag, unreadable, conflicts: [] };

  const missing = input.missingIdentities(union);
  if (missing.length > 0) {
    const anyStore = ordered[0]?.from;
    return {
      ...common,
      action: "sign",
      writeTo: readable.map((destination) => destination.key),
      sign: { identities: missing, keep: anyStore ? union.map((layer) => kept(layer, anyStore)) : [] },
    };
  }
  if (union.length === 0) {
    return unreadable.length > 0 ? { ...common, action: "unchanged", writeTo: [] } : undefined;
  }

  const candidates = ordered.filter((manifest) => containsLayers(manifest.layers, union)).sort(byHolders);
  const chosen = candidates[0];
  let manifest: ManifestContent;
  let blobs: PlannedBlob[];
  if (chosen) {
    manifest = chosen.content;
    blobs = [
      { descriptor: chosen.config, from: chosen.from },
      ...chosen.layers.map((layer) => kept(layer, chosen.from)),
    ];
  } else {
    const built = buildLayerSet(union);
    const fallback = ordered[0]?.from;
    manifest = built.manifest;
    blobs = [
      { descriptor: built.config.descriptor, bytes: built.config.bytes },
      ...union.map((layer): PlannedBlob => (fallback ? kept(layer, fallback) : { descriptor: layer })),
    ];
  }
  const writeTo = readable
    .filter(
      (destination) =>
        !(destination.state.kind === "present" && destination.state.digest === manifest.digest),
    )
    .map((destination) => destination.key);
  return {
    ...common,
    action: writeTo.length > 0 ? "write" : "unchanged",
    writeTo,
    digest: manifest.digest,
    content: { kind: "manifest", manifest, blobs },
  };
}

/**
 * A single-document attachment (`.sbom`): copied where absent; a destination holding another
 * document under the tag is left alone and reported.
 */
export function decideSingleDocument(input: {
  readonly tag: Tag;
  readonly source: { readonly digest: Digest; readonly from: CopySourceStore };
  readonly destinations: readonly DestinationTagState[];
}): WorkItem {
  const writeTo: string[] = [];
  const unreadable: { key: string; message: string }[] = [];
  const conflicts: { key: string; current: Digest }[] = [];
  for (const destination of input.destinations) {
    const state = destination.state;
    if (state.kind === "unreadable") unreadable.push({ key: destination.key, message: state.message });
    else if (state.kind === "absent") writeTo.push(destination.key);
    else if (state.digest !== input.source.digest)
      conflicts.push({ key: destination.key, current: state.digest });
  }
  return {
    kind: "sbom",
    tag: input.tag,
    action: writeTo.length > 0 ? "write" : conflicts.length > 0 ? "conflict" : "unchanged",
    writeTo,
    unreadable,
    conflicts,
    digest: input.source.digest,
    content: { kind: "graph", from: input.source.from, digest: input.source.digest },
  };
}
