import type { Problem } from "../errors.js";
import type { Descriptor } from "../oci/index.js";
import type { AttachmentKind, Digest, RepositoryLocation, RepositoryPath, Tag } from "../reference/index.js";
import type { CopySourceStore } from "../copy/index.js";
import type { SourcePosition } from "../manifest/index.js";
import type { BlobReader, ManifestContent } from "../registry/index.js";
import type { PlannedBlob } from "./blob-io.js";
import type { AttestationLayout } from "./attestation-format.js";
import type { PlannedStatement } from "./promotion-attestations.js";
import type { SignatureSubject } from "./subjects.js";

/**
 * The signature and attachment part of a promotion plan: for each promoted digest, what is
 * signed and what is written where. Decided from what the registries hold (the `.sig`, `.att`
 * and `.sbom` tags of each subject at each destination, the referrers), so a re-run does only
 * what is missing.
 */

/** Which signature layout is written: cosign's `.sig` tags, or a sigstore bundle referrer. */
export type SignatureFormat = "cosign" | "bundle";
export const SIGNATURE_FORMATS: readonly SignatureFormat[] = ["cosign", "bundle"];

/**
 * Which promoted digests get what staging has attached (`.sig`, `.att`, `.sbom`, referrers):
 * - `copied`: those this run copies somewhere (the source is read for them anyway);
 * - `all`: every promoted digest, every run (reconciles attachments added to staging later);
 * - `none`: nothing is carried.
 */
export type AttachmentMode = "none" | "copied" | "all";
export const ATTACHMENT_MODES: readonly AttachmentMode[] = ["none", "copied", "all"];

/** One destination of a promoted digest. */
export interface TargetDestination {
  readonly location: RepositoryLocation;
  /** `formatRepositoryLocation` of the location: how plans name it. */
  readonly key: string;
  /** The destination registry as written in the manifest, for display. */
  readonly registry: string;
}

/** One promoted digest of one source repository, with every destination it is promoted to. */
export interface SignatureTarget {
  readonly project: string;
  readonly image: RepositoryPath;
  readonly source: RepositoryLocation;
  readonly sourceKey: string;
  readonly digest: Digest;
  /** The docker-references signatures name (one per configured identity; usually one). */
  readonly identities: readonly string[];
  readonly destinations: readonly TargetDestination[];
  /**
   * The digest's other destinations, outside this run's scope (`--changed-since`, a shard, a
   * repair of some mirrors): never written, only read when no destination in scope holds our
   * signature, so the one the others hold is copied instead of a new one made.
   */
  readonly elsewhere?: readonly TargetDestination[];
  /** Whether this run copies the digest to some destination (the source is read anyway). */
  readonly copied: boolean;
  /** Whether the digest is an image index, when the inventory saw its media type. */
  readonly rootIsIndex?: boolean;
  /** Where the manifests list the digest (its first edge): the line the attestations cite. */
  readonly position?: SourcePosition;
}

/** `attestation`: one of our attestations (promotion record, VSA) as a sigstore bundle referrer. */
export type WorkItemKind = AttachmentKind | "referrer" | "bundle" | "attestation";

/** What is written: manifest bytes with their blobs, or a graph copied from a store. */
export type PlannedContent =
  | {
      readonly kind: "manifest";
      readonly manifest: ManifestContent;
      /** Config and layers, written before the manifest. */
      readonly blobs: readonly PlannedBlob[];
    }
  | { readonly kind: "graph"; readonly from: CopySourceStore; readonly digest: Digest };

/** A layer to keep in a `.sig` manifest that gets a new signature, and where to read it. */
export interface KeptLayer {
  readonly descriptor: Descriptor;
  readonly from: BlobReader;
}

/**
 * - `unchanged`: every destination already holds the canonical content.
 * - `write`: the canonical content (known now) goes to `writeTo`.
 * - `sign`: a new signature is made once, merged with `keep`, and written to `writeTo`.
 * - `conflict`: a destination holds a different single-document attachment (`.sbom`); it is
 *   left alone.
 */
export type WorkAction = "unchanged" | "write" | "sign" | "conflict";

export interface WorkItem {
  readonly kind: WorkItemKind;
  /** The tag written (`sha256-<hex>.sig` ...); absent for referrers. */
  readonly tag?: Tag;
  readonly action: WorkAction;
  /** Destination keys to write to. */
  readonly writeTo: readonly string[];
  /** Destinations whose state could not be read: they fail, the others proceed. */
  readonly unreadable: readonly { readonly key: string; readonly message: string }[];
  /** Destinations holding another document under the tag (`.sbom`), left alone. */
  readonly conflicts: readonly { readonly key: string; readonly current: Digest }[];
  readonly content?: PlannedContent;
  /**
   * For `sign`: who to sign as and the existing signatures kept next to ours; for our
   * attestations (`attestation`, or `att` layers), the statements signed instead.
   */
  readonly sign?: {
    readonly identities: readonly string[];
    readonly keep: readonly KeptLayer[];
    readonly statements?: readonly PlannedStatement[];
  };
  /** The digest of what is written, when known before writing. */
  readonly digest?: Digest;
  /** For referrers: the artifact type; for bundles: the identity; for attestations: the predicate type. */
  readonly detail?: string;
}

export interface SubjectWork {
  readonly subject: SignatureSubject;
  readonly items: readonly WorkItem[];
}

export interface AttachmentWork {
  readonly target: SignatureTarget;
  readonly subjects: readonly SubjectWork[];
  /** Children skipped (artifacts, not images). */
  readonly notes: readonly string[];
  /**
   * When set, this digest's attachments could not all be planned: its index is unreadable (no
   * subjects then), or one of its subjects failed; `subjects` holds what was planned for the
   * others, which is written all the same.
   */
  readonly problem?: Problem;
}

export interface AttachmentPlan {
  readonly format: SignatureFormat;
  readonly mode: AttachmentMode;
  /** The signer's description, when signing. */
  readonly signer?: string;
  /** Where our attestations go, when the run writes them (it signs). */
  readonly attestations?: AttestationLayout;
  readonly works: readonly AttachmentWork[];
}

/** Whether a work item writes anything (or fails to be read). */
export function itemHasWork(item: WorkItem): boolean {
  return item.writeTo.length > 0 || item.unreadable.length > 0;
}
