import { isJsonObject } from "../json-shape.js";
import { PromoterError, truncateForMessage } from "../errors.js";
import { isIndexMediaType, isManifestMediaType } from "../oci/index.js";
import {
  digestHex,
  digestOf,
  foldHostCase,
  isDigest,
  isRepositoryPath,
  isTag,
  parseImageReference,
  registryHostProblem,
  remoteRepositoryKey,
  type Digest,
  type RepositoryPath,
  type Tag,
} from "../reference/index.js";

/**
 * Registry events normalised from the two notification formats the auditor accepts: the CNCF
 * distribution registry's webhook envelope and Google Pub/Sub push messages carrying GCR or
 * Artifact Registry payloads. Parsing is pure: bytes in, events and problems out.
 *
 * Two things an event says are not taken from what a client of the registry controls:
 * - Which registry it is about. Distribution reports the Host header the pusher sent
 *   (`request.host`, and the host of `target.url`): anyone who can push can name any host. So a
 *   distribution event's registry is the one its notification endpoint was configured for
 *   (`POST /events/<registry>`; see `EventAttribution`); the Host header is kept only to be shown.
 *   Pub/Sub payloads are written by the registry service and name the full reference.
 * - Which event it is. Ids are chosen by whoever sends the notification, so an id alone cannot
 *   tell a redelivery from another event: the key of an event (`id`) is the sender's id together
 *   with a fingerprint of everything else it says, and one event cannot hide another by taking
 *   its id.
 */

/** What happened. Distribution names; Pub/Sub INSERT becomes push, DELETE becomes delete. */
export type AuditAction = "push" | "pull" | "delete" | "mount";

/** Whether the event is about a manifest, a blob, or cannot tell (a distribution delete). */
export type EventTargetKind = "manifest" | "blob" | "unknown";

export type EventSource = "distribution" | "pubsub";

export interface RegistryEvent {
  /**
   * Unique and stable across redeliveries: `distribution:<id>#<fingerprint>` or
   * `pubsub:<messageId>#<fingerprint>`, the fingerprint over everything else the event says.
   */
  readonly id: string;
  readonly source: EventSource;
  /** When the registry says it happened (ISO 8601 as sent), or undefined. */
  readonly timestamp?: string;
  readonly action: AuditAction;
  readonly targetKind: EventTargetKind;
  /**
   * Registry host as the manifests name it (lower-case): the notification endpoint's registry
   * (distribution) or the payload's host after `--registry-host SEEN=NAME` (Pub/Sub);
   * `UNATTRIBUTED_HOST` when nothing attributes the event.
   */
  readonly host: string;
  /**
   * How `host` was decided: `endpoint`, by the notification endpoint the operator configured;
   * `payload`, by the registry service (Pub/Sub); `none`, not at all (`unattributed` says why).
   * Absent in events stored by older versions, which are judged as `payload`.
   */
  readonly attribution?: EventAttribution["kind"] | "payload";
  /** Why the event could not be attributed to a registry (with `attribution: "none"`). */
  readonly unattributed?: string;
  /** The Host header the pusher sent (distribution's `request.host`): shown in findings, never trusted. */
  readonly requestHost?: string;
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

/**
 * The registry of events that nothing attributes: `.invalid` is reserved (RFC 2606), so no
 * manifest can name it and no real repository key collides with theirs.
 */
export const UNATTRIBUTED_HOST = "unattributed.invalid";

/**
 * Which registry the distribution events of one request are about, decided by where they were
 * sent, which the registry's own configuration fixes: `POST /events/<registry>`, or `POST
 * /events` when `--registry-host NAME` says that one registry sends there. `none`: `POST /events`
 * with no such setting; its events are findings of their own (`unattributed-event`).
 */
export type EventAttribution =
  { readonly kind: "endpoint"; readonly host: string } | { readonly kind: "none"; readonly reason: string };

/** The key of an event's repository, the same as the desired state's (`remoteRepositoryKey`). */
export function eventRepositoryKey(event: Pick<RegistryEvent, "host" | "repository">): string {
  return remoteRepositoryKey(event.host, event.repository);
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
 * `--registry-host`: `NAME` (once) is the registry whose notifications come to `POST /events`
 * (`fallback`); `SEEN=NAME` maps the registry host a Pub/Sub payload names to the name the
 * manifests use (`explicit`). Neither is ever applied to a Host header.
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
      if (fallback !== undefined && fallback !== foldHostCase(name)) {
        throw new MalformedEventError(
          `--registry-host without "=" may be given once (found ${fallback} and ${name})`,
        );
      }
      fallback = foldHostCase(name);
    } else {
      explicit.set(foldHostCase(seen), foldHostCase(name));
    }
  }
  return fallback === undefined ? { explicit } : { explicit, fallback };
}

/** What `POST /events` (no registry in the path) is about under `mapping`. */
export function plainEventsAttribution(mapping: HostMapping): EventAttribution {
  if (mapping.fallback !== undefined) return { kind: "endpoint", host: mapping.fallback };
  return {
    kind: "none",
    reason:
      "it came to POST /events, which names no registry: point the registry's notifications at POST /events/<registry> (or give --registry-host NAME)",
  };
}

/** Hex digits of the content fingerprint in event ids: 128 bits, beyond forging a match. */
const EVENT_FINGERPRINT_HEX = 32;
/** Longest Host header kept to show in findings. */
const MAX_REQUEST_HOST_LENGTH = 255;

/**
 * The event with its key: the sender's id and a fingerprint of all the rest, in a fixed order.
 * A redelivery says the same and gets the same key; any other event gets another.
 */
function keyed(senderId: string, event: Omit<RegistryEvent, "id">): RegistryEvent {
  const content = JSON.stringify([
    event.source,
    senderId,
    event.timestamp ?? null,
    event.action,
    event.targetKind,
    event.attribution ?? null,
    event.host,
    event.unattributed ?? null,
    event.requestHost ?? null,
    event.repository,
    event.digest ?? null,
    event.tag ?? null,
    event.mediaType ?? null,
    event.fromRepository ?? null,
    event.references?.map((reference) => [reference.digest, reference.mediaType]) ?? null,
  ]);
  const fingerprint = digestHex(digestOf(content)).slice(0, EVENT_FINGERPRINT_HEX);
  return { id: `${event.source}:${senderId}#${fingerprint}`, ...event };
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
 * `fromRepository`. `request.host` is the Host header the client used: kept as `requestHost` to
 * be shown, never to tell the registry (`attribution` does).
 */
export function parseDistributionEnvelope(body: unknown, attribution: EventAttribution): ParsedEvents {
  if (!isJsonObject(body) || !Array.isArray(body.events)) {
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
    const result = parseDistributionEvent(raw, attribution);
    if (typeof result === "string") problems.push({ index, reason: result });
    else events.push(result);
  });
  return { events, problems };
}

const DISTRIBUTION_ACTIONS: ReadonlySet<string> = new Set(["push", "pull", "delete", "mount"]);

/** One distribution event, or the reason it cannot be used. */
function parseDistributionEvent(raw: unknown, attribution: EventAttribution): RegistryEvent | string {
  if (!isJsonObject(raw)) return "an event must be an object";
  const id = optionalString(raw, "id");
  if (id === undefined || id.length > MAX_EVENT_ID_LENGTH) return "event has no usable id";
  const action = optionalString(raw, "action");
  if (action === undefined || !DISTRIBUTION_ACTIONS.has(action)) {
    return `event ${id}: unknown action ${JSON.stringify(truncateForMessage(String(raw.action), 40))}`;
  }
  const target = raw.target;
  if (!isJsonObject(target)) return `event ${id}: no target`;
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
  const request = isJsonObject(raw.request) ? raw.request : {};
  const requestHost = optionalString(request, "host")?.slice(0, MAX_REQUEST_HOST_LENGTH);
  const timestamp = optionalString(raw, "timestamp");
  const fromRepository = optionalString(target, "fromRepository");
  const references = parseReferences(target.references);
  if (typeof references === "string") return `event ${id}: ${references}`;
  return keyed(id, {
    source: "distribution",
    ...(timestamp === undefined ? {} : { timestamp }),
    action: action as AuditAction,
    targetKind: distributionTargetKind(url, mediaType),
    ...(attribution.kind === "endpoint"
      ? { attribution: "endpoint", host: attribution.host }
      : { attribution: "none", host: UNATTRIBUTED_HOST, unattributed: attribution.reason }),
    ...(requestHost === undefined ? {} : { requestHost }),
    repository,
    ...(digest === undefined ? {} : { digest }),
    ...(tag === undefined ? {} : { tag }),
    ...(mediaType === undefined ? {} : { mediaType }),
    ...(fromRepository === undefined ? {} : { fromRepository }),
    ...(references === undefined ? {} : { references }),
  });
}

function parseReferences(raw: unknown): EventReference[] | string | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw) || raw.length > MAX_EVENT_REFERENCES) return "target.references is not a list";
  const references: EventReference[] = [];
  for (const entry of raw) {
    if (!isJsonObject(entry)) return "target.references holds a non-object";
    const digest = optionalString(entry, "digest");
    const mediaType = optionalString(entry, "mediaType");
    if (digest === undefined || !isDigest(digest) || mediaType === undefined) {
      return "target.references holds an entry without digest and mediaType";
    }
    references.push({ digest, mediaType });
  }
  return references;
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
  if (!isJsonObject(body) || !isJsonObject(body.message)) {
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
  if (!isJsonObject(payload)) {
    throw new MalformedEventError(`Pub/Sub message ${messageId}: data must be a JSON object`);
  }
  const timestamp = optionalString(message, "publishTime") ?? optionalString(message, "publish_time");
  const result = parseRegistryPayload(payload, messageId, timestamp, mapping);
  if (typeof result === "string") return { events: [], problems: [{ index: 0, reason: result }] };
  return { events: [result], problems: [] };
}

/** The GCR / Artifact Registry payload inside a Pub/Sub message. */
function parseRegistryPayload(
  payload: Record<string, unknown>,
  messageId: string,
  timestamp: string | undefined,
  mapping: HostMapping,
): RegistryEvent | string {
  const id = `pubsub:${messageId}`;
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
    const referenceHost = reference.registry;
    if (host !== undefined && (host !== referenceHost || repository !== reference.repository)) {
      return `${id}: digest and tag name different repositories`;
    }
    host = referenceHost;
    repository = reference.repository;
    if (field === "digest") digest = reference.digest;
    else tag = reference.tag;
  }
  if (host === undefined || repository === undefined) return `${id}: no repository`;
  return keyed(messageId, {
    source: "pubsub",
    ...(timestamp === undefined ? {} : { timestamp }),
    action,
    targetKind: "manifest",
    // Written by the registry service, not by the pusher: the payload names the registry.
    attribution: "payload",
    host: mapping.explicit.get(host) ?? host,
    repository,
    ...(digest === undefined ? {} : { digest }),
    ...(tag === undefined ? {} : { tag }),
  });
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
