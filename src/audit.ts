/**
 * The auditor's library API (`import { ... } from "image-promoter/audit"`, docs/auditor.md):
 * judging registry events against the manifests, the findings store, alerts, the server and
 * `reconcile`. Its own entry point because its findings store needs better-sqlite3, a native
 * addon that is an optional dependency, loaded only when a store is opened (audit/sqlite.ts).
 * Every name is listed on purpose; api/audit.api.md is the reviewed record of this surface.
 */

// The desired state and the judgement of one event: pure decisions, and what they need to know
// read through the injected lookup (audit/observe.ts).
export {
  buildDesiredState,
  checkAttachment,
  ignoredReason,
  judgeEvent,
  promotedRelation,
  repositoryStanding,
  type AttachmentCheck,
  type AuditRule,
  type DesiredDigest,
  type DesiredRepository,
  type DesiredState,
  type JudgeOptions,
  type Judgement,
  type ManifestFacts,
  type ManifestLookup,
  type PromotedRelation,
  type RegistryScope,
  type RepositoryStanding,
  type Verdict,
} from "./audit/index.js";

// What counts as an attachment (a signature, attestation or SBOM) rather than an image: what a
// ManifestLookup answers with (`shape`), and cosign's tag layout.
export {
  ATTACHMENT_TAG_NAMES,
  attachmentTag,
  manifestShape,
  parseAttachmentTag,
  recogniseAttachment,
  type AttachmentClass,
  type AttachmentRecognition,
  type AttachmentTagKind,
  type ManifestShape,
} from "./sign/index.js";

// Registry notifications.
export {
  MalformedEventError,
  parseDistributionEnvelope,
  parseHostMapping,
  parsePubSubPush,
  plainEventsAttribution,
  type AuditAction,
  type EventAttribution,
  type EventProblem,
  type EventReference,
  type EventSource,
  type EventTargetKind,
  type HostMapping,
  type ParsedEvents,
  type RegistryEvent,
} from "./audit/index.js";

// The running auditor: findings, alerts, metrics, the server, the manifests it watches.
export {
  AuditMetrics,
  Auditor,
  AuditStoreError,
  DEFAULT_AUDIT_DB,
  FindingReaderBusyError,
  FindingStore,
  ManifestReloadError,
  ManifestWatcher,
  RegistryManifestLookup,
  startAuditServer,
  WebhookAlertSink,
  type AlertResultListener,
  type AlertSink,
  type AlertState,
  type AuditFinding,
  type AuditLookup,
  type AuditorOptions,
  type AuditServer,
  type AuditServerOptions,
  type CheckOutcome,
  type CheckRecord,
  type Correction,
  type EventOutcome,
  type FindingFilter,
  type FindingQueries,
  type LoadedState,
  type ManifestHistory,
  type ManifestOrigin,
  type ManifestRevision,
  type ManifestWatcherOptions,
  type NewFinding,
  type PendingEvent,
  type ReceiveResult,
  type RegistryLookupOptions,
  type RejectReason,
  type Retraction,
  type RevisionState,
  type ViolationToReview,
  type WebhookAlertOptions,
} from "./audit/index.js";

// Production registries compared with the manifests.
export {
  compareRepository,
  reconcile,
  type ReconcileIssue,
  type ReconcileIssueKind,
  type ReconcileObservation,
  type ReconcileOptions,
  type ReconcileReport,
} from "./audit/index.js";

// Names the auditor's API shares with the library, `image-promoter` (the same declarations, so
// `instanceof PromoterError` holds across both entry points): every type this entry point's
// signatures name is importable from it. Type-only, so importing this entry point does not
// load the library's modules beyond those the auditor itself uses.
export { isPromoterError, PromoterError } from "./errors.js";
export type {
  AttachmentKind,
  AuditErrorCode,
  BlobChecker,
  BlobMounter,
  BlobReader,
  BlobWriter,
  CallOptions,
  Clock,
  CopyErrorCode,
  Descriptor,
  Digest,
  DigestAlgorithm,
  DigestEntry,
  DigestInTag,
  ErrorCode,
  Finding,
  GeneralErrorCode,
  GitHubErrorCode,
  GitOpsErrorCode,
  ImageEntry,
  ImageIndex,
  ImageManifest,
  LogFields,
  Logger,
  LogLevel,
  ManifestContent,
  ManifestErrorCode,
  ManifestReader,
  ManifestResolver,
  ManifestSet,
  ManifestWriter,
  ParsedManifest,
  Platform,
  PromotionManifest,
  ReferrerLister,
  RefusedErrorCode,
  RegistryEntry,
  RegistryErrorCode,
  RegistryHost,
  RegistryLocation,
  RepositoryCatalog,
  RepositoryIdentity,
  RepositoryLocation,
  RepositoryOpener,
  RepositoryPath,
  RepositoryStore,
  RequestCount,
  Severity,
  Side,
  SignErrorCode,
  SourcePosition,
  StoreProvider,
  Tag,
  TagEntry,
  TagLister,
  TagListing,
  ListedManifest,
} from "./index.js";
