import { PromoterError, truncateForMessage } from "../errors.js";
import { isIndexMediaType, isManifestMediaType } from "../oci/index.js";
import {
  isDigest,
  isRepositoryPath,
  isTag,
  parseImageReference,
  registryHostProblem,
  type Digest,
  type RepositoryPath,
  type Tag,
} from "../reference/index.js";

/**
 * Registry events normalised from the two notification formats the auditor accepts: the CNCF
 * distribution registry's webhook envelope and Google Pub/Sub push messages carrying GCR or
 * Artifact Registry payloads. Parsing is pure: bytes in, events and problems out.
 */

/** What happened. Distribution names; Pub/Sub INSERT becomes push, DELETE becomes delete. */
export type AuditAction = "push" | "pull" | "delete" | "mount";

/** Whether the event is about a manifest, a blob, or cannot tell (a distribution delete). */
export type EventTargetKind = "manifest" | "blob" | "unknown";

export type EventSource = "distribution" | "pubsub";

export interface RegistryEvent {
  /** Unique and stable across redeliveries: `distribution:<id>` or `pubsub:<messageId>`. */
  readonly id: string;
  readonly source: EventSource;
  /** When the registry says it happened (ISO 8601 as sent), or undefined. */
  readonly timestamp?: string;
  readonly action: AuditAction;
  readonly targetKind: EventTargetKind;
  /** Registry host as the manifests name it (lower-case), after `--registry-host` mapping. */
  readonly host: string;
  readonly repository: RepositoryPath;
  readonly digest?: Digest;
  readonly tag?: Tag;
  readonly mediaType?: string;
  /** For distribution mounts: the repository the blob came from. */
  readonly fromRepository?: string;
  /**
   * What a pushed manifest references (distribution with `notifications.events.includereferences`):
   * for an index its child manifests, for an image manifest its config and layers.
   */
  readonly references?: readonly EventReference[];
}

export interface EventReference {
  readonly digest: Digest;
  readonly mediaType: string;
}

/** Longest `references` list kept from one event; an index has a few dozen children at most. */
export const MAX_EVENT_REFERENCES = 10_000;

/** The display key of an event's repository, the same form as `auditRepositoryKey`. */
export function eventRepositoryKey(event: Pick<RegistryEvent, "host" | "repository">): string {
  return `${event.host}/${event.repository}`;
}

/** `host/path` with the host lower-cased: registry host names are case-insensitive. */
export function auditRepositoryKey(host: string, repository: string): string {
  return `${host.toLowerCase()}/${repository}`;
}

/** A request body the auditor cannot use at all (not JSON, wrong shape): HTTP 400. */
export class MalformedEventError extends PromoterError {
  constructor(message: string) {
    super("audit-malformed-event", message);
  }
}

/** One event of a batch that was skipped, with the reason (the rest of the batch is used). */
export interface EventProblem {
  readonly index: number;
  readonly reason: string;
}

export interface ParsedEvents {
  readonly events: readonly RegistryEvent[];
  readonly problems: readonly EventProblem[];
}

/** Batches larger than this are refused: distribution sends a few events per request. */
export const MAX_EVENTS_PER_REQUEST = 1000;

/**
 * Maps the registry host seen in an event to the name the manifests use. Needed when the
 * registry is reached under another name than the public one (behind a load balancer, an
 * internal service name, a port): `--registry-host SEEN=NAME` maps one host, and
 * `--registry-host NAME` attributes every distribution event not mapped explicitly to NAME.
 */
export interface HostMapping {
  readonly explicit: ReadonlyMap<string, string>;
  readonly fallback?: string;
}

export const IDENTITY_HOST_MAPPING: HostMapping = { explicit: new Map() };

/** Parses `--registry-host` values (`SEEN=NAME` or `NAME`); throws a message for a bad one. */
export function parseHostMapping(values: readonly string[]): HostMapping {
  const explicit = new Map<string, string>();
  let fallback: string | undefined;
  for (const value of values) {
    const equals = value.indexOf("=");
    const seen = equals < 0 ? undefined : value.slice(0, equals);
    const name = equals < 0 ? value : value.slice(equals + 1);
    for (const host of seen === undefined ? [name] : [seen, name]) {
      const problem = registryHostProblem(host);
      if (problem) throw new MalformedEventError(`--registry-host ${JSON.stringify(value)}: ${problem}`);
    }
    if (seen === undefined) {
      if (fallback !== undefined && fallback !== name.toLowerCase()) {
        throw new MalformedEventError(
          `--registry-host without "=" may be given once (found ${fallback} and ${name})`,
        );
      }
      fallback = name.toLowerCase();
    } else {
      explicit.set(seen.toLowerCase(), name.toLowerCase());
    }
  }
  return fallback === undefined ? { explicit } : { explicit, fallback };
}

function mapHost(mapping: HostMapping, seen: string | undefined, useFallback: boolean): string | undefined {
  const lower = seen?.toLowerCase();
  if (lower !== undefined) {
    const mapped = mapping.explicit.get(lower);
    if (mapped !== undefined) return mapped;
  }
  if (useFallback && mapping.fallback !== undefined) return mapping.fallback;
  return lower;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function optionalString(record: Record<string, unknown>, key: string): string | undefined {
  const value = record[key];
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

/** Longest id we keep; ids are UUIDs (distribution) or decimal numbers (Pub/Sub). */
const MAX_EVENT_ID_LENGTH = 200;

export function parseJsonBody(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new MalformedEventError("body is not UTF-8 text");
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new MalformedEventError(`body is not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * The distribution registry's notification envelope, media type
 * `application/vnd.docker.distribution.events.v1+json`:
 * https://github.com/distribution/distribution/blob/v2.8.2/docs/notifications.md
 *
 * Seen from distribution 2.8.2: manifest pushes carry `target.mediaType`, `digest`, `url`
 * (`.../manifests/<digest>`) and `tag` when pushed by tag; blob pushes and pulls have media type
 * `application/octet-stream` and a `.../blobs/` url; deletes carry only `repository` and
 * `digest` (or `tag`, one event per tag of a deleted manifest); `mount` is a blob mount with
 * `fromRepository`. `request.host` is the Host header the client used.
 */
export function parseDistributionEnvelope(body: unknown, mapping: HostMapping): ParsedEvents {
  if (!isRecord(body) || !Array.isArray(body.events)) {
    throw new MalformedEventError('expected a distribution notification envelope {"events": [...]}');
  }
  if (body.events.length > MAX_EVENTS_PER_REQUEST) {
    throw new MalformedEventError(
      `too many events in one request (${body.events.length}, at most ${MAX_EVENTS_PER_REQUEST})`,
    );
  }
  const events: RegistryEvent[] = [];
  const problems: EventProblem[] = [];
  body.events.forEach((raw: unknown, index) => {
    const result = parseDistributionEvent(raw, mapping);
    if (typeof result === "string") problems.push({ index, reason: result });
    else events.push(result);
  });
  return { events, problems };
}

const DISTRIBUTION_ACTIONS: ReadonlySet<string> = new Set(["push", "pull", "delete", "mount"]);

/** One distribution event, or the reason it cannot be used. */
function parseDistributionEvent(raw: unknown, mapping: HostMapping): RegistryEvent | string {
  if (!isRecord(raw)) return "an event must be an object";
  const id = optionalString(raw, "id");
  if (id === undefined || id.length > MAX_EVENT_ID_LENGTH) return "event has no usable id";
  const action = optionalString(raw, "action");
  if (action === undefined || !DISTRIBUTION_ACTIONS.has(action)) {
    return `event ${id}: unknown action ${JSON.stringify(truncateForMessage(String(raw.action), 40))}`;
  }
  const target = raw.target;
  if (!isRecord(target)) return `event ${id}: no target`;
  const repository = optionalString(target, "repository");
  if (repository === undefined || !isRepositoryPath(repository)) {
    return `event ${id}: target.repository is missing or not a repository name`;
  }
  const digest = optionalString(target, "digest");
  if (digest !== undefined && !isDigest(digest)) return `event ${id}: target.digest is not a digest`;
  const tag = optionalString(target, "tag");
  if (tag !== undefined && !isTag(tag)) return `event ${id}: target.tag is not a tag`;
  const mediaType = optionalString(target, "mediaType");
  const url = optionalString(target, "url");
  const request = isRecord(raw.request) ? raw.request : {};
  const seenHost = optionalString(request, "host") ?? hostOfUrl(url);
  const host = mapHost(mapping, seenHost, true);
  if (host === undefined) {
    return `event ${id}: no request.host or target.url to tell the registry; set --registry-host`;
  }
  const hostProblem = registryHostProblem(host);
  if (hostProblem) return `event ${id}: registry host ${JSON.stringify(host)}: ${hostProblem}`;
  const timestamp = optionalString(raw, "timestamp");
  const fromRepository = optionalString(target, "fromRepository");
  const references = parseReferences(target.references);
  if (typeof references === "string") return `event ${id}: ${references}`;
  return {
    id: `distribution:${id}`,
    source: "distribution",
    ...(timestamp === undefined ? {} : { timestamp }),
    action: action as AuditAction,
    targetKind: distributionTargetKind(url, mediaType),
    host,
    repository,
    ...(digest === undefined ? {} : { digest }),
    ...(tag === undefined ? {} : { tag }),
    ...(mediaType === undefined ? {} : { mediaType }),
    ...(fromRepository === undefined ? {} : { fromRepository }),
    ...(references === undefined ? {} : { references }),
  };
}

function parseReferences(raw: unknown): EventReference[] | string | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw) || raw.length > MAX_EVENT_REFERENCES) return "target.references is not a list";
  const references: EventReference[] = [];
  for (const entry of raw) {
    if (!isRecord(entry)) return "target.references holds a non-object";
    const digest = optionalString(entry, "digest");
    const mediaType = optionalString(entry, "mediaType");
    if (digest === undefined || !isDigest(digest) || mediaType === undefined) {
      return "target.references holds an entry without digest and mediaType";
    }
    references.push({ digest, mediaType });
  }
  return references;
}

function hostOfUrl(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    return new URL(url).host || undefined;
  } catch {
    return undefined;
  }
}

function distributionTargetKind(url: string | undefined, mediaType: string | undefined): EventTargetKind {
  if (url !== undefined) {
    if (/\/v2\/.+\/manifests\/[^/]+$/.test(url)) return "manifest";
    if (/\/v2\/.+\/blobs\/[^/]+$/.test(url)) return "blob";
  }
  if (mediaType !== undefined) return isManifestMediaType(mediaType) ? "manifest" : "blob";
  // A tag only exists on manifests; a bare digest delete may be either.
  return "unknown";
}

/**
 * A Google Pub/Sub push request carrying a GCR / Artifact Registry notification:
 * https://cloud.google.com/pubsub/docs/push#receive_push
 * https://cloud.google.com/artifact-registry/docs/configure-notifications
 *
 *   {"message": {"data": base64({"action": "INSERT"|"DELETE", "digest": "HOST/REPO@sha256:...",
 *                                "tag": "HOST/REPO:TAG"}), "messageId": "...", "publishTime": "..."},
 *    "subscription": "projects/P/subscriptions/S"}
 *
 * The registry only reports manifests here (images and tags), never blobs.
 */
export function parsePubSubPush(body: unknown, mapping: HostMapping): ParsedEvents {
  if (!isRecord(body) || !isRecord(body.message)) {
    throw new MalformedEventError('expected a Pub/Sub push request {"message": {...}, "subscription": ...}');
  }
  const message = body.message;
  const messageId = optionalString(message, "messageId") ?? optionalString(message, "message_id");
  if (messageId === undefined || messageId.length > MAX_EVENT_ID_LENGTH) {
    throw new MalformedEventError("Pub/Sub message has no messageId");
  }
  const data = optionalString(message, "data");
  if (data === undefined) throw new MalformedEventError(`Pub/Sub message ${messageId} has no data`);
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(data)) {
    throw new MalformedEventError(`Pub/Sub message ${messageId}: data is not base64`);
  }
  const payload = parseJsonBody(Buffer.from(data, "base64"));
  if (!isRecord(payload)) {
    throw new MalformedEventError(`Pub/Sub message ${messageId}: data must be a JSON object`);
  }
  const timestamp = optionalString(message, "publishTime") ?? optionalString(message, "publish_time");
  const result = parseRegistryPayload(payload, `pubsub:${messageId}`, timestamp, mapping);
  if (typeof result === "string") return { events: [], problems: [{ index: 0, reason: result }] };
  return { events: [result], problems: [] };
}

/** The GCR / Artifact Registry payload inside a Pub/Sub message. */
function parseRegistryPayload(
  payload: Record<string, unknown>,
  id: string,
  timestamp: string | undefined,
  mapping: HostMapping,
): RegistryEvent | string {
  const rawAction = optionalString(payload, "action");
  let action: AuditAction;
  if (rawAction === "INSERT") action = "push";
  else if (rawAction === "DELETE") action = "delete";
  else return `${id}: unknown action ${JSON.stringify(truncateForMessage(String(payload.action), 40))}`;
  const digestText = optionalString(payload, "digest");
  const tagText = optionalString(payload, "tag");
  if (digestText === undefined && tagText === undefined) return `${id}: payload has neither digest nor tag`;
  let host: string | undefined;
  let repository: RepositoryPath | undefined;
  let digest: Digest | undefined;
  let tag: Tag | undefined;
  for (const [field, text] of [
    ["digest", digestText],
    ["tag", tagText],
  ] as const) {
    if (text === undefined) continue;
    let reference;
    try {
      reference = parseImageReference(text);
    } catch (error) {
      return `${id}: ${field} ${(error as Error).message}`;
    }
    if (field === "digest" && reference.digest === undefined) return `${id}: digest has no @sha256:...`;
    if (field === "tag" && reference.tag === undefined) return `${id}: tag has no :tag`;
    const referenceHost = reference.registry.toLowerCase();
    if (host !== undefined && (host !== referenceHost || repository !== reference.repository)) {
      return `${id}: digest and tag name different repositories`;
    }
    host = referenceHost;
    repository = reference.repository;
    if (field === "digest") digest = reference.digest;
    else tag = reference.tag;
  }
  if (host === undefined || repository === undefined) return `${id}: no repository`;
  return {
    id,
    source: "pubsub",
    ...(timestamp === undefined ? {} : { timestamp }),
    action,
    targetKind: "manifest",
    host: mapHost(mapping, host, false) ?? host,
    repository,
    ...(digest === undefined ? {} : { digest }),
    ...(tag === undefined ? {} : { tag }),
  };
}

/**
 * The child manifests of an index push, when the registry sent its references; undefined when
 * the event is not an index or carries no references.
 */
export function indexChildrenOf(event: RegistryEvent): Digest[] | undefined {
  if (event.mediaType === undefined || !isIndexMediaType(event.mediaType) || !event.references)
    return undefined;
  return event.references
    .filter((reference) => isManifestMediaType(reference.mediaType))
    .map((r) => r.digest);
}
