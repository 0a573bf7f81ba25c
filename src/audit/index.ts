/**
 * The auditor: judges registry events against the promotion manifests (`audit serve`) and
 * compares production registries with the manifests (`audit reconcile`).
 */
export {
  checkAttachment,
  ignoredReason,
  judgeEvent,
  MAX_REFERRERS_CHECKED,
  promotedRelation,
  promotedTagSubject,
  type AttachmentCheck,
  type AuditRule,
  type JudgeOptions,
  type Judgement,
  type ManifestFacts,
  type ManifestLookup,
  type PromotedRelation,
  type Verdict,
} from "./decide.js";
export {
  buildDesiredState,
  productionRepositories,
  repositoryStanding,
  type DesiredDigest,
  type DesiredRepository,
  type DesiredState,
  type RegistryScope,
  type RepositoryStanding,
} from "./desired-state.js";
export {
  eventRepositoryKey,
  indexChildrenOf,
  IDENTITY_HOST_MAPPING,
  MalformedEventError,
  MAX_EVENTS_PER_REQUEST,
  MAX_EVENT_REFERENCES,
  parseDistributionEnvelope,
  parseHostMapping,
  parseJsonBody,
  parsePubSubPush,
  plainEventsAttribution,
  UNATTRIBUTED_HOST,
  type AuditAction,
  type EventAttribution,
  type EventProblem,
  type EventReference,
  type EventSource,
  type EventTargetKind,
  type HostMapping,
  type ParsedEvents,
  type RegistryEvent,
} from "./event.js";
export {
  AuditStoreError,
  DEFAULT_AUDIT_DB,
  DEFAULT_FINDINGS_LIMIT,
  findingQuery,
  findingsFromRows,
  FindingStore,
  MAX_FINDINGS_LIMIT,
  type AlertState,
  type AuditFinding,
  type FindingFilter,
  type NewFinding,
  type PendingEvent,
} from "./finding-store.js";
export {
  FindingReader,
  FindingReaderBusyError,
  MAX_QUEUED_READS,
  READ_TIMEOUT_MS,
  type FindingQueries,
  type FindingReaderOptions,
} from "./finding-reader.js";
export {
  Auditor,
  DEFAULT_PENDING_GRACE_MS,
  type AuditLookup,
  type AuditorOptions,
  type ReceiveResult,
} from "./auditor.js";
export {
  ALERT_TIMEOUT_MS,
  alertWebhookProblem,
  DEFAULT_ALERT_ATTEMPTS,
  DEFAULT_ALERT_BASE_DELAY_MS,
  escapeSlackText,
  MAX_ALERT_DELAY_MS,
  MAX_ALERT_TEXT,
  MAX_QUEUED_ALERTS,
  WebhookAlertSink,
  type AlertResultListener,
  type AlertSink,
  type WebhookAlertOptions,
} from "./alert.js";
export { AuditMetrics, type EventOutcome, type RejectReason } from "./metrics.js";
export {
  findingJson,
  MAX_EVENT_BODY_BYTES,
  MAX_FINDINGS_PAGE,
  normaliseTime,
  REQUEST_TIMEOUT_MS,
  startAuditServer,
  tokenMatches,
  type AuditServer,
  type AuditServerOptions,
} from "./server.js";
export {
  LOOKUP_CONCURRENCY,
  MAX_CACHED_MANIFESTS,
  NEGATIVE_CACHE_MS,
  RegistryManifestLookup,
  type RegistryLookupOptions,
} from "./lookup.js";
export {
  DEFAULT_RELOAD_INTERVAL_MS,
  FAILED_CHECKS_BEFORE_ALERT,
  ManifestReloadError,
  ManifestWatcher,
  MAX_FINGERPRINT_FILES,
  type LoadedState,
  type ManifestOrigin,
  type ManifestWatcherOptions,
} from "./manifest-source.js";
export {
  GitCheckout,
  GitError,
  GIT_TIMEOUT_MS,
  gitBranchProblem,
  gitUrlProblem,
  redactGitUrl,
  splitGitCredentials,
} from "./git-checkout.js";
export {
  compareRepository,
  DEFAULT_RECONCILE_CONCURRENCY,
  reconcile,
  type ReconcileIssue,
  type ReconcileIssueKind,
  type ReconcileOptions,
  type ReconcileReport,
  type ReconcileObservation,
} from "./reconcile.js";
