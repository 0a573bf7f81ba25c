import { describeError } from "../errors.js";
import { runBounded } from "../concurrency/index.js";
import { silentLogger, type Logger } from "../log.js";
import { parseManifest, type Descriptor, type ImageIndex } from "../oci/index.js";
import { attachmentTag, digestOf, type Digest } from "../reference/index.js";
import {
  openOnSide,
  type BlobReader,
  type CallOptions,
  type ManifestReader,
  type ManifestResolver,
  type ReferrerLister,
  type RepositoryOpener,
  type TagLister,
} from "../registry/index.js";
import type {
  AttachmentMode,
  AttachmentPlan,
  AttachmentWork,
  SignatureFormat,
  SignatureTarget,
  SubjectWork,
  TargetDestination,
  WorkItem,
} from "./attachment-plan.js";
import { readSmallBlob } from "./blob-io.js";
import {
  layerPredicateType,
  writesAttLayers,
  writesReferrers,
  type AttestationLayout,
} from "./attestation-format.js";
import {
  BUNDLE_MEDIA_TYPE,
  BundleAnnotation,
  bundleLayerOf,
  isSigningBundleReferrer,
  MAX_BUNDLE_BYTES,
  MAX_BUNDLE_CANDIDATES,
} from "./bundle-format.js";
import { layerKey, MAX_SIGNATURE_LAYER_BYTES, parseLayerSet, simpleSigningPayload } from "./cosign-format.js";
import {
  decideLayerSet,
  decideSingleDocument,
  type DestinationTagState,
  type ObservedLayerSet,
  type TagState,
} from "./decide-attachments.js";
import { problemOf } from "./errors.js";
import {
  subjectStatements,
  type AttestationFactsOf,
  type AttestOptions,
  type PlannedStatement,
} from "./promotion-attestations.js";
import { ATTESTATION_PREDICATE_TYPES } from "./verify-attestations.js";
import type { ImageSigner } from "./signer.js";
import { signatureSubjects, type SignatureSubject } from "./subjects.js";
import type { OwnSignatures } from "./own-signatures.js";

/**
 * Observing what is attached to every promoted digest, then deciding (decide-attachments.ts)
 * what to sign and write. Requests per subject: one HEAD of the `.sig` tag per destination and
 * one GET per distinct `.sig` manifest when signing; when staging's attachments are carried, one
 * HEAD per attachment tag in staging (and per destination for those staging has) and the
 * referrers of the subject; from LIST_SOURCE_TAGS_MIN_TARGETS digests of one staging repository
 * on, one listing of its tags instead of asking for the attachment tags it does not hold. Our attestations (when signing with `attest`): the referrers list per
 * destination (shared with the other referrer work of the subject), and per attestation found
 * there its manifest and bundle (to verify it is ours); with the `.att` layout, the envelopes of
 * the layers annotated with our predicate types.
 *
 * A run that plans only some destinations of a digest (`--changed-since`, a shard, a repair)
 * must not sign it anew where the others already hold our signature or attestation: ECDSA
 * signatures (and a bundle's timestamp) differ each time, so the mirrors would differ and the
 * next full run would write both everywhere. When no destination in scope holds ours, the
 * target's `elsewhere` destinations are read too (the same requests, read only) and what is
 * found there is copied; they are never written.
 */

export interface PlanAttachmentsOptions {
  readonly provider: RepositoryOpener;
  /** Sign what is promoted; nothing is signed without one. */
  readonly signer?: ImageSigner;
  readonly format?: SignatureFormat;
  readonly attachments?: AttachmentMode;
  /** Sign each image of an index too (default true). */
  readonly signChildren?: boolean;
  /**
   * Make every destination hold the union of the `.sig` manifests found at the destinations,
   * even without a signer (`promoter verify --repair` copies the canonical signature).
   */
  readonly mirrorSignatures?: boolean;
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
  /** Promoted digests planned at once (their requests go through the per-host limits). */
  readonly concurrency?: number;
  /**
   * Also attest what is signed: the promotion record and the VSA of every signed subject, made
   * once per subject and run and reconciled like signatures (docs/signing.md, "Promotion
   * attestations"). Only with a signer.
   */
  readonly attest?: AttestOptions;
}

/** What planning reads from a source or a destination; it writes nothing. */
type AttachmentReader = ManifestResolver & ManifestReader & ReferrerLister & BlobReader & TagLister;

/**
 * From this many carried digests of one staging repository on, its tags are listed once and
 * the attachment tags it does not have (`.sig`, `.att`, `.sbom`, the referrers fallback) are not
 * asked for: four requests per digest, where most digests have none. A listing is one request
 * per 1,000 tags, so below this it could cost more than it saves. Its pages come one after
 * another: a repository of more than ~16,000 tags with few digests carried pays more round
 * trips than the HEADs would have (the listing's size bounds still apply).
 */
export const LIST_SOURCE_TAGS_MIN_TARGETS = 4;

/** The predicate types of the attestations a signing run writes (promotion record, VSA). */
const OUR_ATTESTATION_TYPES: readonly string[] = Object.values(ATTESTATION_PREDICATE_TYPES);

interface Context {
  readonly options: PlanAttachmentsOptions;
  readonly call: CallOptions;
  readonly format: SignatureFormat;
  readonly mode: AttachmentMode;
  readonly signChildren: boolean;
  /**
   * Subjects another promoted digest plans (an image listed on its own and inside an index):
   * planning them twice would make two different `.sig` manifests race. Each claim settles true
   * once its items are planned (the claimer keeps and writes them), false when planning that
   * subject failed, and then the next one to need it plans it afresh (`planOnce`).
   */
  readonly claimed: Map<string, Promise<boolean>>;
  /** Staging repositories (by store name) with enough carried digests to list their tags. */
  readonly listedSources: ReadonlySet<string>;
  /** Their tags, listed on first need; undefined when the listing failed (then: ask each). */
  readonly sourceListings: Map<string, Promise<ReadonlySet<string> | undefined>>;
  /** Our attestations: where they go and the run's time (RFC 3339), when attesting. */
  readonly attest?: {
    readonly options: AttestOptions;
    readonly layout: AttestationLayout;
    readonly time: string;
    /** The facts of the plan's targets, collected on first need (once per plan). */
    readonly facts: () => Promise<AttestationFactsOf>;
  };
}

interface OpenDestination {
  readonly key: string;
  readonly store: AttachmentReader;
}

export async function planAttachments(
  targets: readonly SignatureTarget[],
  options: PlanAttachmentsOptions,
): Promise<AttachmentPlan> {
  const context: Context = {
    options,
    call: options.signal ? { signal: options.signal } : {},
    format: options.format ?? "cosign",
    mode: options.attachments ?? "copied",
    signChildren: options.signChildren ?? true,
    claimed: new Map(),
    listedSources: sourcesToList(targets, options),
    sourceListings: new Map(),
    ...(options.attest && options.signer
      ? { attest: attestContext(options.attest, targets, options.signal) }
      : {}),
  };
  const works: (AttachmentWork | undefined)[] = new Array<AttachmentWork | undefined>(targets.length);
  await runBounded(
    targets,
    options.concurrency ?? 8,
    async (target, index) => {
      works[index] = await planTarget(target, context);
    },
    options.signal,
  );
  return {
    format: context.format,
    mode: context.mode,
    ...(options.signer ? { signer: options.signer.description } : {}),
    ...(context.attest ? { attestations: context.attest.layout } : {}),
    works: works.filter((work): work is AttachmentWork => work !== undefined),
  };
}

function carries(target: SignatureTarget, mode: AttachmentMode): boolean {
  return mode === "all" || (mode === "copied" && target.copied);
}

/** The staging repositories whose tags are worth listing (LIST_SOURCE_TAGS_MIN_TARGETS). */
function sourcesToList(targets: readonly SignatureTarget[], options: PlanAttachmentsOptions): Set<string> {
  const mode = options.attachments ?? "copied";
  const carried = new Map<string, number>();
  for (const target of targets) {
    if (!carries(target, mode)) continue;
    let name: string;
    try {
      name = openOnSide(options.provider, target.source, "source").name;
    } catch {
      continue; // planTarget reports a location that cannot be opened
    }
    carried.set(name, (carried.get(name) ?? 0) + 1);
  }
  return new Set(
    [...carried].filter(([, count]) => count >= LIST_SOURCE_TAGS_MIN_TARGETS).map(([name]) => name),
  );
}

/**
 * The tags of a staging repository, listed once per plan when it is worth it; undefined when it
 * is not, or when the listing failed (each tag is then asked for, as without it).
 */
function listedSourceTags(
  source: AttachmentReader,
  context: Context,
): Promise<ReadonlySet<string> | undefined> {
  if (!context.listedSources.has(source.name)) return Promise.resolve(undefined);
  let listing = context.sourceListings.get(source.name);
  if (listing === undefined) {
    const signal = context.options.signal;
    listing = source.listTags(context.call).then(
      (tags): ReadonlySet<string> => new Set(tags),
      (error: unknown) => {
        if (signal?.aborted) throw error;
        (context.options.logger ?? silentLogger).log(
          "debug",
          `could not list ${source.name} for its attachments; asking for each`,
          { error: describeError(error) },
        );
        return undefined;
      },
    );
    context.sourceListings.set(source.name, listing);
  }
  return listing;
}

function attestContext(
  options: AttestOptions,
  targets: readonly SignatureTarget[],
  signal: AbortSignal | undefined,
): NonNullable<Context["attest"]> {
  let collected: Promise<AttestationFactsOf> | undefined;
  const collect = options.collectFacts;
  return {
    options,
    layout: options.layout ?? "referrer",
    time: (options.now?.() ?? new Date()).toISOString(),
    facts: () => (collected ??= collect ? collect(targets, signal) : Promise.resolve(() => ({}))),
  };
}

async function planTarget(target: SignatureTarget, context: Context): Promise<AttachmentWork | undefined> {
  const { options } = context;
  const signing = options.signer !== undefined;
  const carry = carries(target, context.mode);
  if (!signing && !carry && options.mirrorSignatures !== true) return undefined;
  const logger = options.logger ?? silentLogger;
  const source = openOnSide(options.provider, target.source, "source");
  const open = (destination: TargetDestination): OpenDestination => ({
    key: destination.key,
    store: openOnSide(options.provider, destination.location, "destination"),
  });
  const destinations = target.destinations.map(open);
  const elsewhere = (target.elsewhere ?? []).map(open);
  let subjects: SignatureSubject[];
  try {
    subjects = await subjectsOf(target, source, destinations, context, signing, carry);
  } catch (error) {
    if (options.signal?.aborted) throw error;
    logger.log("warn", `cannot read ${target.digest} to plan its signatures`, {
      error: describeError(error),
    });
    return { target, subjects: [], notes: [], problem: problemOf(error) };
  }
  const notes = subjects.flatMap((subject) => (subject.note === undefined ? [] : [subject.note]));
  const destinationKeys = target.destinations
    .map((destination) => destination.key)
    .sort()
    .join(",");
  // The subjects (an index and its images) are planned at once, each waiting only for its own
  // answers. One that fails does not take the others with it: what they planned is kept (and
  // written), and the target reports the failure.
  const results = await Promise.allSettled(
    subjects.map(async (subject): Promise<SubjectWork> => {
      const claim = `${subject.digest}|${target.identities.join(",")}|${destinationKeys}`;
      const items = await planOnce(context, claim, () =>
        planSubject(
          target,
          subject,
          source,
          { inScope: destinations, elsewhere },
          context,
          signing && subject.sign,
          carry,
        ),
      );
      return { subject, items };
    }),
  );
  const planned: SubjectWork[] = [];
  let problem: AttachmentWork["problem"];
  for (const result of results) {
    if (result.status === "fulfilled") {
      planned.push(result.value);
      continue;
    }
    if (options.signal?.aborted) throw result.reason;
    logger.log("warn", `cannot plan the signatures of ${target.digest}`, {
      error: describeError(result.reason),
    });
    problem ??= problemOf(result.reason);
  }
  return { target, subjects: planned, notes, ...(problem === undefined ? {} : { problem }) };
}

/**
 * A subject's items, planned here unless another target plans it: then none (that target keeps
 * and writes them), or, when its planning failed there, planned here afresh. The claim is taken
 * in the same step as the decision (no await between), so two targets never plan one subject.
 */
async function planOnce(
  context: Context,
  claim: string,
  plan: () => Promise<WorkItem[]>,
): Promise<WorkItem[]> {
  for (;;) {
    const earlier = context.claimed.get(claim);
    if (earlier === undefined) break;
    if (await earlier) return [];
    // Failed there: the first target to see it plans it; the others wait on that one.
    if (context.claimed.get(claim) === earlier) break;
  }
  const planning = plan();
  context.claimed.set(
    claim,
    planning.then(
      () => true,
      () => false,
    ),
  );
  return planning;
}

/** The root and, for an index, its children, read from wherever the digest already is. */
async function subjectsOf(
  target: SignatureTarget,
  source: AttachmentReader,
  destinations: readonly OpenDestination[],
  context: Context,
  signing: boolean,
  carry: boolean,
): Promise<SignatureSubject[]> {
  const needChildren =
    ((signing || context.options.mirrorSignatures === true) && context.signChildren) || carry;
  // The bundle layout names the subject by descriptor (media type and size), and so do the
  // attestation referrers.
  const needDescriptor =
    signing &&
    (context.format === "bundle" || (context.attest !== undefined && writesReferrers(context.attest.layout)));
  // A digest this run copies is read from the source; one already promoted from a destination.
  const readers = target.copied
    ? [source, ...destinations.map((destination) => destination.store)]
    : [...destinations.map((destination) => destination.store), source];
  if (target.rootIsIndex === false || (target.rootIsIndex === true && !needChildren)) {
    if (!needDescriptor) return signatureSubjects(target.digest, undefined, undefined, context.signChildren);
    const failures: string[] = [];
    for (const store of readers) {
      const descriptor = await resolveQuietly(store, target.digest, context, failures);
      if (descriptor) return signatureSubjects(target.digest, descriptor, undefined, context.signChildren);
    }
    throw notFound(target.digest, source, failures);
  }
  const failures: string[] = [];
  for (const store of readers) {
    let content;
    try {
      content = await store.getManifest(target.digest, context.call);
    } catch (error) {
      if (context.options.signal?.aborted) throw error;
      failures.push(describeError(error));
      continue;
    }
    if (!content) continue;
    const root: Descriptor = {
      mediaType: content.mediaType,
      digest: content.digest,
      size: content.bytes.length,
    };
    const parsed = parseManifest(content.bytes, content.mediaType, `${store.name}@${target.digest}`);
    const index: ImageIndex | undefined = parsed.kind === "index" && needChildren ? parsed : undefined;
    return signatureSubjects(target.digest, root, index, context.signChildren);
  }
  throw notFound(target.digest, source, failures);
}

/**
 * Why a digest could not be read anywhere: absent everywhere, or (the first) read that failed.
 * A failed read is not absence: saying "neither in staging nor in any destination" after a
 * network error sent people looking for a missing image that was there.
 */
function notFound(digest: Digest, source: AttachmentReader, failures: readonly string[]): Error {
  if (failures.length > 0) return new Error(`cannot read ${digest}: ${failures[0]}`);
  return new Error(`${digest} is neither in ${source.name} nor in any destination`);
}

async function resolveQuietly(
  store: AttachmentReader,
  digest: Digest,
  context: Context,
  failures: string[],
): Promise<Descriptor | undefined> {
  try {
    return await store.resolve(digest, context.call);
  } catch (error) {
    if (context.options.signal?.aborted) throw error;
    failures.push(describeError(error));
    return undefined;
  }
}

async function tagState(
  store: AttachmentReader,
  tag: string,
  call: CallOptions,
  signal?: AbortSignal,
): Promise<TagState> {
  try {
    const descriptor = await store.resolve(tag as Parameters<AttachmentReader["resolve"]>[0], call);
    return descriptor ? { kind: "present", digest: descriptor.digest } : { kind: "absent" };
  } catch (error) {
    if (signal?.aborted) throw error;
    return { kind: "unreadable", message: describeError(error) };
  }
}

/** The tag's state at each destination, in order. */
function tagStates(
  destinations: readonly OpenDestination[],
  tag: string,
  call: CallOptions,
  signal?: AbortSignal,
): Promise<DestinationTagState[]> {
  return Promise.all(
    destinations.map(async (destination) => ({
      key: destination.key,
      state: await tagState(destination.store, tag, call, signal),
    })),
  );
}

async function readObserved(
  store: AttachmentReader,
  digest: Digest,
  call: CallOptions,
): Promise<ObservedLayerSet> {
  const content = await store.getManifest(digest, call);
  if (!content) throw new Error(`${store.name}: ${digest} vanished while it was read`);
  const parsed = parseLayerSet(content, `${store.name}@${digest}`);
  return { content, config: parsed.config, layers: parsed.layers, from: store };
}

/** The destinations a run writes to, and the target's others, which it only reads. */
interface SubjectDestinations {
  readonly inScope: readonly OpenDestination[];
  readonly elsewhere: readonly OpenDestination[];
}

async function planSubject(
  target: SignatureTarget,
  subject: SignatureSubject,
  source: AttachmentReader,
  { inScope: destinations, elsewhere }: SubjectDestinations,
  context: Context,
  signThis: boolean,
  carry: boolean,
): Promise<WorkItem[]> {
  const { call } = context;
  const signal = context.options.signal;
  const signer = context.options.signer;
  const items: WorkItem[] = [];
  const attest = context.attest;
  // What we attest is known before the statements are: their bytes (and the facts they hold,
  // which may ask git and GitHub) are made only when some destination lacks one of ours.
  // The canonical identity our statements name (and our attestations found must name).
  const attestIdentity = target.identities[0] ?? "";
  const attestTypes = signThis && signer && attest && attestIdentity !== "" ? OUR_ATTESTATION_TYPES : [];
  let made: Promise<PlannedStatement[]> | undefined;
  const statements = (): Promise<PlannedStatement[]> =>
    (made ??= attest
      ? attest
          .facts()
          .then((factsOf) =>
            subjectStatements(
              target,
              subject,
              attest.time,
              attest.options.promoterVersion,
              factsOf(target, subject.digest),
            ),
          )
      : Promise.resolve([]));
  // Staging's attachment tags, asked at once (each is a round trip over a distance), and not at
  // all when a listing of the repository shows they are not there.
  const sourceTags = new Map<"sig" | "att" | "sbom", Digest>();
  const listed = carry ? await listedSourceTags(source, context) : undefined;
  if (carry) {
    const found = await Promise.all(
      (["sig", "att", "sbom"] as const).map(async (kind) => {
        const tag = attachmentTag(subject.digest, kind);
        if (listed !== undefined && !listed.has(tag)) return [kind, undefined] as const;
        return [kind, await source.resolve(tag, call)] as const;
      }),
    );
    for (const [kind, descriptor] of found) if (descriptor) sourceTags.set(kind, descriptor.digest);
  }

  /** The `.sig` or `.att` work of this subject, or nothing to do. */
  const layerSetItem = async (kind: "sig" | "att"): Promise<WorkItem | undefined> => {
    const signHere = kind === "sig" && signThis && context.format === "cosign";
    const mirrorHere = kind === "sig" && subject.sign && context.options.mirrorSignatures === true;
    const attestHere =
      kind === "att" && attestTypes.length > 0 && attest !== undefined && writesAttLayers(attest.layout);
    const sourceDigest = sourceTags.get(kind);
    if (!signHere && !mirrorHere && !attestHere && sourceDigest === undefined) return undefined;
    const tag = attachmentTag(subject.digest, kind);
    const states = await tagStates(destinations, tag, call, signal);
    const manifests = new Map<Digest, ObservedLayerSet>();
    const resolved: DestinationTagState[] = [];
    for (const [i, state] of states.entries()) {
      const destination = destinations[i];
      if (!destination || state.state.kind !== "present") {
        resolved.push(state);
        continue;
      }
      const digest = state.state.digest;
      if (!manifests.has(digest)) {
        try {
          manifests.set(digest, await readObserved(destination.store, digest, call));
        } catch (error) {
          if (signal?.aborted) throw error;
          resolved.push({
            key: state.key,
            state: { kind: "unreadable", message: `${tag} cannot be merged: ${describeError(error)}` },
          });
          continue;
        }
      }
      resolved.push(state);
    }
    const sourceSet =
      sourceDigest === undefined
        ? undefined
        : (manifests.get(sourceDigest) ?? (await readObserved(source, sourceDigest, call)));
    // Destinations first: that is where an earlier run of ours wrote its signature.
    const ownIn = (sets: readonly ObservedLayerSet[]): Promise<Map<string, string>> =>
      signHere && signer
        ? ownSignatureLayers(sets, subject.digest, target.identities, signer.ownSignatures)
        : attestHere && signer
          ? ownAttestationLayers(
              sets,
              subject.digest,
              attestIdentity,
              attestTypes,
              signer.ownSignatures,
              call,
              signal,
            )
          : Promise.resolve(new Map<string, string>());
    // What the union lacks of ours: identities to sign as (`.sig`), or predicate types (`.att`).
    const wanted = signHere ? target.identities : attestHere ? attestTypes : [];
    let own = await ownIn([...manifests.values(), ...(sourceSet ? [sourceSet] : [])]);
    let outside: DestinationTagState[] = [];
    if (elsewhere.length > 0 && wanted.some((name) => !own.has(name))) {
      // Not in scope: perhaps at the digest's other destinations, from an earlier run.
      outside = await layerSetsElsewhere(elsewhere, tag, manifests, context);
      if (outside.some((state) => state.state.kind === "present")) {
        own = await ownIn([...manifests.values(), ...(sourceSet ? [sourceSet] : [])]);
      }
    }
    const item = decideLayerSet({
      kind,
      tag,
      ...(sourceSet ? { source: sourceSet } : {}),
      destinations: resolved,
      ...(outside.length > 0 ? { elsewhere: outside } : {}),
      manifests,
      missingIdentities: (union) => {
        const keys = new Set(union.map(layerKey));
        return wanted.filter((name) => {
          const ownKey = own.get(name);
          return ownKey === undefined || !keys.has(ownKey);
        });
      },
    });
    if (item?.action === "sign" && attestHere) {
      const missing = new Set(item.sign?.identities ?? []);
      return {
        ...item,
        sign: {
          identities: [],
          keep: item.sign?.keep ?? [],
          statements: (await statements()).filter((statement) => missing.has(statement.predicateType)),
        },
      };
    }
    return item;
  };

  /** Staging's `.sbom`, where the destinations stand on it. */
  const sbomItem = async (): Promise<WorkItem | undefined> => {
    const sbom = sourceTags.get("sbom");
    if (sbom === undefined) return undefined;
    const tag = attachmentTag(subject.digest, "sbom");
    const states = await tagStates(destinations, tag, call, signal);
    return decideSingleDocument({ tag, source: { digest: sbom, from: source }, destinations: states });
  };

  // The three are independent: asked at once, kept in this order.
  for (const item of await Promise.all([layerSetItem("sig"), layerSetItem("att"), sbomItem()])) {
    if (item) items.push(item);
  }

  const listings = new Map<string, Descriptor[] | { error: string }>();
  const destinationReferrers = async (
    destination: OpenDestination,
  ): Promise<Descriptor[] | { error: string }> => {
    let listing = listings.get(destination.key);
    if (!listing) {
      try {
        listing = await destination.store.referrers(subject.digest, call);
      } catch (error) {
        if (signal?.aborted) throw error;
        listing = { error: describeError(error) };
      }
      listings.set(destination.key, listing);
    }
    return listing;
  };

  if (carry) {
    const referrers = await source.referrers(subject.digest, {
      ...call,
      ...(listed === undefined ? {} : { listedTags: listed }),
    });
    for (const referrer of referrers) {
      const writeTo: string[] = [];
      const unreadable: { key: string; message: string }[] = [];
      for (const destination of destinations) {
        const listing = await destinationReferrers(destination);
        if ("error" in listing) unreadable.push({ key: destination.key, message: listing.error });
        else if (!listing.some((entry) => entry.digest === referrer.digest)) writeTo.push(destination.key);
      }
      items.push({
        kind: "referrer",
        action: writeTo.length > 0 ? "write" : "unchanged",
        writeTo,
        unreadable,
        conflicts: [],
        digest: referrer.digest,
        content: { kind: "graph", from: source, digest: referrer.digest },
        ...(referrer.artifactType === undefined ? {} : { detail: referrer.artifactType }),
      });
    }
  }

  if (signThis && context.format === "bundle" && signer) {
    items.push(
      ...(await planBundles(
        target,
        subject,
        { inScope: destinations, elsewhere },
        destinationReferrers,
        context,
        signer,
      )),
    );
  }
  if (attestTypes.length > 0 && signer && attest && writesReferrers(attest.layout)) {
    for (const predicateType of attestTypes) {
      items.push(
        await planAttestationReferrer(
          subject,
          {
            predicateType,
            identity: attestIdentity,
            made: async () => {
              const statement = (await statements()).find((made) => made.predicateType === predicateType);
              if (!statement) throw new Error(`no ${predicateType} statement was made for ${subject.digest}`);
              return statement;
            },
          },
          { inScope: destinations, elsewhere },
          destinationReferrers,
          context,
          signer,
        ),
      );
    }
  }
  return items;
}

/**
 * The tag at destinations outside the run's scope, each distinct manifest read into `manifests`.
 * Only what could be read counts: a destination this run does not write to is not its failure.
 */
async function layerSetsElsewhere(
  elsewhere: readonly OpenDestination[],
  tag: string,
  manifests: Map<Digest, ObservedLayerSet>,
  context: Context,
): Promise<DestinationTagState[]> {
  const { call } = context;
  const signal = context.options.signal;
  const logger = context.options.logger ?? silentLogger;
  const states = await tagStates(elsewhere, tag, call, signal);
  const readable: DestinationTagState[] = [];
  for (const [i, state] of states.entries()) {
    const destination = elsewhere[i];
    if (!destination || state.state.kind === "unreadable") continue;
    if (state.state.kind === "present" && !manifests.has(state.state.digest)) {
      try {
        manifests.set(state.state.digest, await readObserved(destination.store, state.state.digest, call));
      } catch (error) {
        if (signal?.aborted) throw error;
        logger.log("debug", `${destination.key}: cannot read ${tag}`, { error: describeError(error) });
        continue;
      }
    }
    readable.push(state);
  }
  return readable;
}

/**
 * For each identity, the key (`layerKey`) of one layer among `sets` that is our own signature of
 * `subject` as that identity, fully verified by the signer (own-signatures.ts). Only layers over
 * our exact payload are examined; anything staging or an earlier carry put there that does not
 * verify as ours is someone else's signature.
 */
async function ownSignatureLayers(
  sets: readonly ObservedLayerSet[],
  subject: Digest,
  identities: readonly string[],
  ownSignatures: OwnSignatures,
): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const identity of identities) {
    const payloadDigest = digestOf(simpleSigningPayload(identity, subject));
    const examined = new Set<string>();
    search: for (const set of sets) {
      for (const layer of set.layers) {
        const key = layerKey(layer);
        if (layer.digest !== payloadDigest || examined.has(key)) continue;
        examined.add(key);
        if ((await ownSignatures.layer(layer, subject, identity)).ok) {
          found.set(identity, key);
          break search;
        }
      }
    }
  }
  return found;
}

/**
 * For each predicate type, the key (`layerKey`) of one `.att` layer among `sets` that is our own
 * attestation of that type about `subject`, fully verified by the signer (own-signatures.ts).
 * Only DSSE layers annotated with the type are read; an envelope that cannot be read or does not
 * verify as ours is someone else's.
 */
async function ownAttestationLayers(
  sets: readonly ObservedLayerSet[],
  subject: Digest,
  identity: string,
  predicateTypes: readonly string[],
  ownSignatures: OwnSignatures,
  call: CallOptions,
  signal: AbortSignal | undefined,
): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const examined = new Set<string>();
  for (const set of sets) {
    for (const layer of set.layers) {
      const predicateType = layerPredicateType(layer);
      if (predicateType === undefined || !predicateTypes.includes(predicateType) || found.has(predicateType))
        continue;
      const key = layerKey(layer);
      if (examined.has(key)) continue;
      examined.add(key);
      let envelope: Uint8Array;
      try {
        envelope = await readSmallBlob(set.from, layer, MAX_SIGNATURE_LAYER_BYTES, call);
      } catch (error) {
        if (signal?.aborted) throw error;
        continue;
      }
      if ((await ownSignatures.attestationLayer(layer, envelope, subject, predicateType, identity)).ok) {
        found.set(predicateType, key);
      }
    }
  }
  return found;
}

/**
 * Bundle layout: our signature is a referrer of the subject. One found at any destination that
 * the signer fully verifies as its own (own-signatures.ts) is copied to the others; otherwise one
 * is made.
 */
async function planBundles(
  target: SignatureTarget,
  subject: SignatureSubject,
  { inScope: destinations, elsewhere }: SubjectDestinations,
  referrersOf: (destination: OpenDestination) => Promise<Descriptor[] | { error: string }>,
  context: Context,
  signer: ImageSigner,
): Promise<WorkItem[]> {
  const unreadable: { key: string; message: string }[] = [];
  const holders: BundleHolders = new Map();
  for (const destination of destinations) {
    const listing = await referrersOf(destination);
    if ("error" in listing) {
      unreadable.push({ key: destination.key, message: listing.error });
      continue;
    }
    addBundleHolders(holders, destination, listing, true);
  }
  const found = new Map<string, { digest: Digest; store: AttachmentReader; keys: ReadonlySet<string> }>();
  const examined = new Set<Digest>();
  await findOwnBundles(holders, examined, found, target, subject, context, signer);
  if (elsewhere.length > 0 && target.identities.some((identity) => !found.has(identity))) {
    // Not in scope: perhaps at the digest's other destinations, from an earlier run. What they
    // list only adds candidates; the keys (where it is already) stay those in scope.
    await addHoldersElsewhere(holders, elsewhere, subject, context);
    await findOwnBundles(holders, examined, found, target, subject, context, signer);
  }
  const readableKeys = destinations
    .map((destination) => destination.key)
    .filter((key) => !unreadable.some((entry) => entry.key === key));
  return target.identities.map((identity): WorkItem => {
    const existing = found.get(identity);
    if (!existing) {
      return {
        kind: "bundle",
        action: "sign",
        writeTo: readableKeys,
        unreadable,
        conflicts: [],
        sign: { identities: [identity], keep: [] },
        detail: identity,
      };
    }
    const writeTo = readableKeys.filter((key) => !existing.keys.has(key));
    return {
      kind: "bundle",
      action: writeTo.length > 0 ? "write" : "unchanged",
      writeTo,
      unreadable,
      conflicts: [],
      digest: existing.digest,
      content: { kind: "graph", from: existing.store, digest: existing.digest },
      detail: identity,
    };
  });
}

/**
 * Adds what the destinations outside the run's scope list to `holders`: candidates only (the
 * keys, where a referrer already is, stay those in scope). One that cannot be read is skipped:
 * a destination this run does not write to is not its failure.
 */
async function addHoldersElsewhere(
  holders: BundleHolders,
  elsewhere: readonly OpenDestination[],
  subject: SignatureSubject,
  context: Context,
  accepts?: (entry: Descriptor) => boolean,
): Promise<void> {
  for (const destination of elsewhere) {
    let listing: Descriptor[];
    try {
      listing = await destination.store.referrers(subject.digest, context.call);
    } catch (error) {
      if (context.options.signal?.aborted) throw error;
      continue;
    }
    addBundleHolders(holders, destination, listing, false, accepts);
  }
}

/** Signing bundle referrers found, by digest: how many destinations list each, where to read it. */
type BundleHolders = Map<Digest, { count: number; store: AttachmentReader; keys: Set<string> }>;

/**
 * Counts the referrers one destination lists that `accepts` takes; `inScope` destinations are the
 * ones it is recorded at.
 */
function addBundleHolders(
  holders: BundleHolders,
  destination: OpenDestination,
  listing: readonly Descriptor[],
  inScope: boolean,
  accepts: (entry: Descriptor) => boolean = isSigningBundleReferrer,
): void {
  for (const entry of listing) {
    if (!accepts(entry)) continue;
    const holder = holders.get(entry.digest) ?? {
      count: 0,
      store: destination.store,
      keys: new Set<string>(),
    };
    holder.count += 1;
    if (inScope) holder.keys.add(destination.key);
    holders.set(entry.digest, holder);
  }
}

/**
 * Our own bundle for each identity not yet `found`, among the candidates most destinations list
 * (at most MAX_BUNDLE_CANDIDATES examined per subject, each once).
 */
async function findOwnBundles(
  holders: BundleHolders,
  examined: Set<Digest>,
  found: Map<string, { digest: Digest; store: AttachmentReader; keys: ReadonlySet<string> }>,
  target: SignatureTarget,
  subject: SignatureSubject,
  context: Context,
  signer: ImageSigner,
): Promise<void> {
  const candidates = [...holders.entries()]
    .filter(([digest]) => !examined.has(digest))
    .sort((a, b) => b[1].count - a[1].count || (a[0] < b[0] ? -1 : 1))
    .slice(0, MAX_BUNDLE_CANDIDATES - examined.size);
  for (const [digest, holder] of candidates) {
    if (target.identities.every((identity) => found.has(identity))) break;
    examined.add(digest);
    let identity: string | undefined;
    try {
      identity = await ownBundleIdentity(
        holder.store,
        digest,
        subject.digest,
        target.identities.filter((candidate) => !found.has(candidate)),
        signer,
        context.call,
      );
    } catch (error) {
      if (context.options.signal?.aborted) throw error;
      continue;
    }
    if (identity !== undefined) found.set(identity, { digest, store: holder.store, keys: holder.keys });
  }
}

/**
 * One of our attestations as a bundle referrer: a referrer of that predicate type at any
 * destination that the signer verifies as its own (own-signatures.ts) is copied to the
 * destinations lacking it; otherwise the statement is signed once and written everywhere.
 * Attestations of the same type by anyone else (another key, kpromo's) are left alone and do not
 * count. Uses the referrers lists the subject's other referrer work reads (`referrersOf`).
 */
async function planAttestationReferrer(
  subject: SignatureSubject,
  statement: {
    readonly predicateType: string;
    /** The name the statement publishes the digest under (the target's canonical identity). */
    readonly identity: string;
    readonly made: () => Promise<PlannedStatement>;
  },
  { inScope: destinations, elsewhere }: SubjectDestinations,
  referrersOf: (destination: OpenDestination) => Promise<Descriptor[] | { error: string }>,
  context: Context,
  signer: ImageSigner,
): Promise<WorkItem> {
  const unreadable: { key: string; message: string }[] = [];
  const holders: BundleHolders = new Map();
  const ofThisType = (entry: Descriptor): boolean =>
    entry.artifactType === BUNDLE_MEDIA_TYPE &&
    entry.annotations?.[BundleAnnotation.predicateType] === statement.predicateType;
  for (const destination of destinations) {
    const listing = await referrersOf(destination);
    if ("error" in listing) {
      unreadable.push({ key: destination.key, message: listing.error });
      continue;
    }
    addBundleHolders(holders, destination, listing, true, ofThisType);
  }
  const examined = new Set<Digest>();
  const findOwn = async (): Promise<
    { digest: Digest; store: AttachmentReader; keys: Set<string> } | undefined
  > => {
    const candidates = [...holders.entries()]
      .filter(([digest]) => !examined.has(digest))
      .sort((a, b) => b[1].count - a[1].count || (a[0] < b[0] ? -1 : 1))
      .slice(0, MAX_BUNDLE_CANDIDATES - examined.size);
    for (const [digest, holder] of candidates) {
      examined.add(digest);
      try {
        const bytes = await referrerBundle(holder.store, digest, subject.digest, context.call);
        if (
          bytes &&
          (
            await signer.ownSignatures.attestation(
              bytes,
              subject.digest,
              statement.predicateType,
              statement.identity,
            )
          ).ok
        ) {
          return { digest, store: holder.store, keys: holder.keys };
        }
      } catch (error) {
        if (context.options.signal?.aborted) throw error;
      }
    }
    return undefined;
  };
  let found = await findOwn();
  if (!found && elsewhere.length > 0) {
    // Not in scope: perhaps at the digest's other destinations, from an earlier run.
    await addHoldersElsewhere(holders, elsewhere, subject, context, ofThisType);
    found = await findOwn();
  }
  const readableKeys = destinations
    .map((destination) => destination.key)
    .filter((key) => !unreadable.some((entry) => entry.key === key));
  const common = { kind: "attestation" as const, unreadable, conflicts: [], detail: statement.predicateType };
  if (!found) {
    return {
      ...common,
      action: "sign",
      writeTo: readableKeys,
      sign: { identities: [], keep: [], statements: [await statement.made()] },
    };
  }
  const held = found.keys;
  const writeTo = readableKeys.filter((key) => !held.has(key));
  return {
    ...common,
    action: writeTo.length > 0 ? "write" : "unchanged",
    writeTo,
    digest: found.digest,
    content: { kind: "graph", from: found.store, digest: found.digest },
  };
}

/**
 * The bundle a referrer of `subject` carries, or undefined when the manifest is absent or is a
 * referrer of another subject (listed here by a lying referrers index: not ours).
 */
async function referrerBundle(
  store: AttachmentReader,
  referrer: Digest,
  subject: Digest,
  call: CallOptions,
): Promise<Uint8Array | undefined> {
  const content = await store.getManifest(referrer, call);
  if (!content) return undefined;
  const parsed = parseManifest(content.bytes, content.mediaType, `${store.name}@${referrer}`);
  if (parsed.kind !== "manifest" || parsed.subject?.digest !== subject) return undefined;
  const layer = bundleLayerOf(content, `${store.name}@${referrer}`);
  if (layer.mediaType !== BUNDLE_MEDIA_TYPE) return undefined;
  return readSmallBlob(store, layer, MAX_BUNDLE_BYTES, call);
}

/**
 * The identity (among `identities`) of which a bundle referrer is our own signature of `subject`,
 * fully verified by the signer (own-signatures.ts), or undefined.
 */
async function ownBundleIdentity(
  store: AttachmentReader,
  referrer: Digest,
  subject: Digest,
  identities: readonly string[],
  signer: ImageSigner,
  call: CallOptions,
): Promise<string | undefined> {
  const bytes = await referrerBundle(store, referrer, subject, call);
  if (!bytes) return undefined;
  for (const identity of identities) {
    if ((await signer.ownSignatures.bundle(bytes, subject, identity)).ok) return identity;
  }
  return undefined;
}
