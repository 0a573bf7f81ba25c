import { isJsonObject } from "../../json-shape.js";
import { isDigest, isTag, type Digest, type Tag } from "../../reference/index.js";
import type { ListedManifest } from "../store.js";

/**
 * The `manifest` map that Google Container Registry and Artifact Registry add to a
 * `GET /v2/<repo>/tags/list` answer, besides the standard `tags`: every manifest of the
 * repository (tagged or not), keyed by digest, with its tags, media type, size and times. One
 * request (per page) then says what a HEAD per tag and per digest would. Pure.
 *
 *   {"name": "...", "tags": ["v1"], "child": [...],
 *    "manifest": {"sha256:...": {"tag": ["v1"], "mediaType": "...", "imageSizeBytes": "1234",
 *                               "timeCreatedMs": "...", "timeUploadedMs": "..."}}}
 *
 * The map is the registry's word like any answer: an entry is taken only when its key is a
 * digest and its tags are tags; what is malformed is left out (the planner then asks with a
 * HEAD, as for a registry without the map). Sizes and times are kept only as well-formed
 * decimal strings, as Google writes them.
 * https://github.com/google/go-containerregistry/blob/main/pkg/v1/google/list.go (the wire format)
 */

/** Characters of a media type kept (RFC 6838 allows 127 + 1 + 127). */
const MAX_MEDIA_TYPE = 255;
const DECIMAL = /^\d{1,16}$/;

function decimal(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value !== "string" || !DECIMAL.test(value)) return undefined;
  const parsed = Number(value);
  return Number.isSafeInteger(parsed) ? parsed : undefined;
}

function listedManifest(entry: Record<string, unknown>): ListedManifest {
  const tags = Array.isArray(entry.tag)
    ? entry.tag.filter((tag): tag is Tag => typeof tag === "string" && isTag(tag))
    : [];
  const mediaType =
    typeof entry.mediaType === "string" && entry.mediaType.length <= MAX_MEDIA_TYPE
      ? entry.mediaType
      : undefined;
  const size = decimal(entry.imageSizeBytes);
  const uploadedMs = decimal(entry.timeUploadedMs);
  const uploaded = uploadedMs === undefined ? undefined : new Date(uploadedMs);
  return {
    tags,
    ...(mediaType === undefined ? {} : { mediaType }),
    ...(size === undefined ? {} : { size }),
    ...(uploaded === undefined || Number.isNaN(uploaded.getTime())
      ? {}
      : { uploaded: uploaded.toISOString() }),
  };
}

/**
 * Adds the map of one tags/list page to `into`; returns how many entries the page held (for the
 * listing's bounds), or undefined when the page has no `manifest` object (not Google's answer).
 */
export function addManifestMap(page: unknown, into: Map<Digest, ListedManifest>): number | undefined {
  if (!isJsonObject(page) || !isJsonObject(page.manifest)) return undefined;
  let entries = 0;
  for (const [key, value] of Object.entries(page.manifest)) {
    entries++;
    if (!isDigest(key) || !isJsonObject(value)) continue;
    const listed = listedManifest(value);
    const earlier = into.get(key);
    // A digest on two pages: the union of its tags.
    into.set(
      key,
      earlier ? { ...earlier, ...listed, tags: [...new Set([...earlier.tags, ...listed.tags])] } : listed,
    );
  }
  return entries;
}

/** Where each tag points, by the map (a tag the map gives two digests is left out: HEAD it). */
export function tagsOfManifestMap(map: ReadonlyMap<Digest, ListedManifest>): Map<Tag, Digest> {
  const tags = new Map<Tag, Digest>();
  const ambiguous = new Set<Tag>();
  for (const [digest, listed] of map) {
    for (const tag of listed.tags) {
      const earlier = tags.get(tag);
      if (earlier !== undefined && earlier !== digest) ambiguous.add(tag);
      tags.set(tag, digest);
    }
  }
  for (const tag of ambiguous) tags.delete(tag);
  return tags;
}
