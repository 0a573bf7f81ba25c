import * as path from "node:path";
import {
  alertWebhookProblem,
  Auditor,
  AuditMetrics,
  DEFAULT_AUDIT_DB,
  DEFAULT_PENDING_GRACE_MS,
  DEFAULT_RELOAD_INTERVAL_MS,
  DEFAULT_REVISION_WINDOW_MS,
  DEFAULT_TRUST_CACHE_ENTRIES,
  DEFAULT_TRUST_CONCURRENCY,
  DEFAULT_TRUST_MAX_AGE_MS,
  FindingStore,
  ManifestWatcher,
  parseHostMapping,
  RegistryManifestLookup,
  registryPlaceVerifier,
  startAuditServer,
  TrustCache,
  WebhookAlertSink,
  type AlertSink,
  type HostMapping,
  type ManifestOrigin,
} from "../../audit/index.js";
import { describeErrno, describeError, isPromoterError, UsageError } from "../../errors.js";
import type { Logger } from "../../log.js";
import type { Tag } from "../../reference/index.js";
import {
  booleanOption,
  integerOption,
  stringListOption,
  stringOption,
  type Command,
  type ParsedValues,
} from "../command.js";
import { ExitCode, type CliIO } from "../io.js";
import { registryOptionSpecs, storeProviderFromOptions } from "../registry-options.js";
import { registryPolicyOptionSpecs } from "../registry-policy-options.js";
import { createCliLogger, parseLogLevel } from "../logger.js";
import { readSecretFile, secretOption, type SecretValue } from "../secret-options.js";
import { trustedSignerOptionSpecs, trustedSigners } from "../signing-options.js";
import {
  checkIdentity,
  type ApproverPolicy,
  type KeylessPolicy,
  type VerificationKey,
} from "../../sign/index.js";

/** A token shorter than this is refused: it is the only thing between the internet and the log. */
export const MIN_TOKEN_LENGTH = 16;
/** How long shutdown waits for queued alerts. */
const SHUTDOWN_ALERT_DRAIN_MS = 5000;

/** `--listen HOST:PORT` (`[::1]:8080` for IPv6). */
export function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (!match || host === undefined || port > 65535) {
    throw new UsageError(
      `--listen must be HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080), not ${JSON.stringify(value)}`,
    );
  }
  return { host, port };
}

/**
 * The manifests to watch, from exactly one of the three inputs. `gitUrl` is the URL of
 * `--git-url` or `--git-url-file` once read (see `secretOption`).
 */
export function manifestOrigin(
  values: ParsedValues,
  gitUrl: string | undefined = stringOption(values, "git-url"),
): ManifestOrigin {
  const manifest = stringOption(values, "manifest");
  const thin = stringOption(values, "thin-manifest-dir");
  const given = [manifest, thin, gitUrl].filter((value) => value !== undefined);
  if (given.length !== 1) {
    throw new UsageError(
      "give exactly one of --manifest FILE, --thin-manifest-dir DIR or --git-url URL (or --git-url-file FILE)",
    );
  }
  if (given[0] === "") throw new UsageError("the manifest path or URL must not be empty");
  const branch = stringOption(values, "branch");
  const inside = stringOption(values, "path");
  if (gitUrl === undefined && (branch !== undefined || inside !== undefined)) {
    throw new UsageError("--branch and --path go with --git-url");
  }
  if (manifest !== undefined) return { kind: "manifest", file: manifest };
  if (thin !== undefined) return { kind: "thin-manifest-dir", directory: thin };
  return {
    kind: "git",
    url: gitUrl ?? "",
    ...(branch === undefined ? {} : { branch }),
    ...(inside === undefined ? {} : { path: inside }),
  };
}

/** Reads a bearer token file (`option` names it in messages): at least 16 characters, no spaces. */
export async function readTokenFile(
  file: string,
  option = "--token-file",
): Promise<{ token: string; looseMode: boolean }> {
  const { text: token, looseMode } = await readSecretFile(option, file);
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
    throw new UsageError(
      `${option} ${file}: the token must be at least ${MIN_TOKEN_LENGTH} characters without spaces (e.g. openssl rand -hex 32)`,
    );
  }
  return { token, looseMode };
}

/**
 * Reads `--acknowledger-tokens-file`: one `NAME TOKEN` per line (`#` comments, blank lines
 * skipped). The name is who an acknowledgement records, so each person gets a token of their own.
 */
export async function readAcknowledgerTokens(
  file: string,
): Promise<{ acknowledgers: Map<string, string>; looseMode: boolean }> {
  const option = "--acknowledger-tokens-file";
  const { text, looseMode } = await readSecretFile(option, file);
  const acknowledgers = new Map<string, string>();
  const tokens = new Set<string>();
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const match = /^([A-Za-z0-9][A-Za-z0-9._@-]{0,63})\s+(\S+)$/.exec(line);
    const [, name, token] = match ?? [];
    if (name === undefined || token === undefined) {
      throw new UsageError(
        `${option} ${file} line ${index + 1}: expected NAME TOKEN (a name of letters, digits, . _ @ -, then the token)`,
      );
    }
    if (token.length < MIN_TOKEN_LENGTH) {
      throw new UsageError(
        `${option} ${file} line ${index + 1}: the token must be at least ${MIN_TOKEN_LENGTH} characters (e.g. openssl rand -hex 32)`,
      );
    }
    if (acknowledgers.has(name) || tokens.has(token)) {
      throw new UsageError(`${option} ${file} line ${index + 1}: each name and each token may appear once`);
    }
    acknowledgers.set(name, token);
    tokens.add(token);
  });
  if (acknowledgers.size === 0) throw new UsageError(`${option} ${file}: no NAME TOKEN line`);
  return { acknowledgers, looseMode };
}

/** Whether a git URL carries a user or password (`https://user:token@host/...`). */
function gitUrlHasCredentials(url: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\/[^/@]*@/i.test(url);
}

function hostMappingOption(values: ParsedValues): HostMapping {
  try {
    return parseHostMapping(stringListOption(values, "registry-host"));
  } catch (error) {
    throw new UsageError(describeError(error));
  }
}

/**
 * A failure to load the manifests at start, as one line: the project's own errors say what went
 * wrong already; others (a missing file or directory) are named with the source.
 */
function manifestLoadError(error: unknown, source: string): unknown {
  if (isPromoterError(error)) return error;
  return new UsageError(`cannot load the manifests (${source}): ${describeErrno(error)}`, { cause: error });
}

/** Warns when a secret is where others can read it: on the command line, or in a loose file. */
function warnAboutSecret(
  logger: Logger,
  secret: SecretValue | undefined,
  what: string,
  sensitiveOnCommandLine: boolean,
): void {
  if (!secret) return;
  if (secret.onCommandLine && sensitiveOnCommandLine) {
    logger.log(
      "warn",
      `${what} is on the command line, visible to every local user; use ${secret.origin}-file FILE or ${secret.origin} env://NAME`,
    );
  }
  if (secret.looseFile !== undefined) {
    logger.log("warn", `the file holding ${what} is readable by group or others; chmod 600 it`, {
      file: secret.looseFile,
    });
  }
}

/** Resolves when the signal aborts. */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else
      signal.addEventListener(
        "abort",
        () => {
          resolve();
        },
        { once: true },
      );
  });
}

/**
 * The status page's trust settings: `promoter verify`'s options with their meaning there
 * (sign/verify-place.ts); undefined without `--public-key` and `--policy`.
 */
async function trustSettingsFromOptions(
  values: ParsedValues,
  io: CliIO,
): Promise<
  | {
      expectation: { keys: VerificationKey[]; keyless?: KeylessPolicy; approvers?: ApproverPolicy };
      identity?: string;
      maxAgeMs?: number;
    }
  | undefined
> {
  const given =
    stringListOption(values, "public-key").length > 0 || stringOption(values, "policy") !== undefined;
  const identity = stringOption(values, "sign-identity");
  const minApprovers = integerOption(values, "require-approvers", 1, 1000);
  const independent = booleanOption(values, "require-independent-approver");
  const maxAgeSeconds = integerOption(values, "trust-max-age", 1, 86_400);
  if (!given) {
    if (identity !== undefined || minApprovers !== undefined || independent || maxAgeSeconds !== undefined) {
      throw new UsageError(
        "--sign-identity, --require-approvers, --require-independent-approver and --trust-max-age shape the status page's signature checks: give --public-key FILE (or --policy FILE) too",
      );
    }
    return undefined;
  }
  if (identity !== undefined) checkIdentity(identity);
  const { keys, keyless } = await trustedSigners(values, io);
  const approvers: ApproverPolicy = {
    ...(minApprovers === undefined ? {} : { minApprovers }),
    ...(independent ? { independentApprover: true } : {}),
  };
  return {
    expectation: {
      keys,
      ...(keyless ? { keyless } : {}),
      ...(Object.keys(approvers).length > 0 ? { approvers } : {}),
    },
    ...(identity === undefined ? {} : { identity }),
    ...(maxAgeSeconds === undefined ? {} : { maxAgeMs: maxAgeSeconds * 1000 }),
  };
}

export const auditServeCommand: Command = {
  words: ["audit", "serve"],
  summary: "Judge registry notifications against the manifests, record findings, raise alerts",
  usage:
    "audit serve (--thin-manifest-dir DIR | --manifest FILE | --git-url URL|env://NAME | --git-url-file FILE [--branch B] [--path P])\n" +
    "        --listen HOST:PORT --token-file FILE [--reader-token-file FILE] [--db FILE]\n" +
    "        [--viewer-token-file FILE] [--acknowledger-tokens-file FILE]\n" +
    "        [--alert-webhook URL|env://NAME | --alert-webhook-file FILE] [--allow-registry NAME ...]",
  description: `
Receives registry notifications and judges each change in a production repository against the
promotion manifests: a digest or tag a manifest asks for, a child manifest of a promoted index, a
signature/attestation/SBOM tag or referrer of a promoted digest (when its content is one, not a
runnable image) is verified; anything else is a violation, and so is every delete. Pulls, blob
uploads and source repositories are not judged.

Endpoints: POST /events/<registry> (the notifications of a distribution registry, named as the
manifests name it: the endpoint, never the pusher's Host header, says which registry an event is
about), POST /events (the notifications of the one registry --registry-host NAME names; without
it every event there is an "unattributed-event" violation), POST /pubsub (Google Pub/Sub push with
GCR / Artifact Registry payloads), GET /findings, GET /healthz, GET /metrics. The POST endpoints
need "Authorization: Bearer <token>" of --token-file (for Pub/Sub also "?token=<token>");
GET /findings needs the other token of --reader-token-file (without it, findings are only
readable with 'promoter audit findings'), and returns at most 500 findings a page, with "next"
for the following one.

The status page, GET /status (search an image, recent promotions, findings, a matrix of images
and mirrors), is on with --viewer-token-file (a read-only token) and/or
--acknowledger-tokens-file (NAME TOKEN lines: who may acknowledge a finding, recorded by name).
A browser signs in by posting the token once; it gets an HttpOnly, SameSite=Strict session
cookie. CI uploads promotion reports (promoter promote --report) to POST /status/api/reports
with the --token-file token.

With trust settings, as promoter verify takes them (--public-key FILE, repeatable, and/or
--policy FILE for keyless identities; --sign-identity for the name signatures must carry,
default each image's first destination; --require-approvers N and
--require-independent-approver judge the recorded approvals), the page shows each mirror's
signature as valid (by whom), invalid (why) or missing, and the promotion attestation the same
way, with the approvers and change only from an attestation whose signature verified. Checks run
in the background when a search first asks or a push arrives ("checking..." until then), at most
${DEFAULT_TRUST_CONCURRENCY} at once, and are cached (${DEFAULT_TRUST_CACHE_ENTRIES} places; an event in a repository drops its
entries; a verdict older than --trust-max-age, default ${DEFAULT_TRUST_MAX_AGE_MS / 1000} s, is checked again when asked, so a
signature replaced without an event shows within that time). Without them the page says signatures are not verified.

Secrets (the webhook URL, a git URL with credentials) given as arguments are visible to every
local user in the process list: give them as env://NAME or in a file (--alert-webhook-file,
--git-url-file). Credentials of an http(s) git URL are sent as an HTTP header, never passed to
git on its command line or written to its configuration.

Findings are kept in an SQLite database (--db, default ./${DEFAULT_AUDIT_DB}), through better-sqlite3,
an optional dependency the auditor needs; violations are logged as JSON lines on stdout and sent
to --alert-webhook (Slack-compatible). Manifests are reloaded when they change; a broken change
keeps the last good state and raises an alert.

A promotion may run before the auditor's next reload: an event is judged against the manifests
as they were on the branch when it arrived (the current revision, and any replaced less than
--revision-window ago), and before it is declared a violation the manifests are checked (git
fetched) again. A violation decided when that check failed is retracted, in the findings and by
an alert, when a later check explains it. A push made before the merge that adds it stays a
violation.

Registries are checked as promote checks them (docs/manifest-format.md, "Registry policy"): one on
this machine or a private network, or an oci: layout outside the tree, is left out of the desired
state with an error unless allowed with --allow-registry, and the tree's
manifests/registry-policy.yaml applies. No connection reaches an internal address except on the
hosts of --allow-registry, whatever a name resolves to.

Runs until interrupted (SIGINT/SIGTERM). Details: docs/auditor.md.`,
  options: {
    manifest: { type: "string", valueName: "FILE", description: "A plain promotion manifest file" },
    "thin-manifest-dir": { type: "string", valueName: "DIR", description: "A thin-manifest tree" },
    "git-url": {
      type: "string",
      valueName: "URL",
      description:
        "Clone the manifests from this git repository (or env://NAME: the URL is in that variable)",
    },
    "git-url-file": {
      type: "string",
      valueName: "FILE",
      description: "Like --git-url, the URL read from this file (for URLs with credentials)",
    },
    branch: {
      type: "string",
      valueName: "B",
      description: "Branch of --git-url (default: its default branch)",
    },
    path: {
      type: "string",
      valueName: "P",
      description:
        "Manifest file or thin-manifest tree inside the repository, links resolved (default: its root)",
    },
    listen: {
      type: "string",
      valueName: "HOST:PORT",
      description: "Address to listen on, e.g. 127.0.0.1:8080",
    },
    "token-file": {
      type: "string",
      valueName: "FILE",
      description: `File holding the bearer token notification senders present (>= ${MIN_TOKEN_LENGTH} characters)`,
    },
    "reader-token-file": {
      type: "string",
      valueName: "FILE",
      description: "File holding the bearer token GET /findings readers present (another token)",
    },
    "viewer-token-file": {
      type: "string",
      valueName: "FILE",
      description: "File holding the read-only token of the status page, GET /status (another token)",
    },
    "acknowledger-tokens-file": {
      type: "string",
      valueName: "FILE",
      description: "File of NAME TOKEN lines: who may acknowledge findings on the status page",
    },
    db: {
      type: "string",
      valueName: "FILE",
      description: `SQLite findings database (default ./${DEFAULT_AUDIT_DB})`,
    },
    "alert-webhook": {
      type: "string",
      valueName: "URL",
      description:
        'POST a Slack-compatible {"text": ...} message per violation (or env://NAME: the URL is in that variable)',
    },
    "alert-webhook-file": {
      type: "string",
      valueName: "FILE",
      description: "Like --alert-webhook, the URL read from this file",
    },
    "registry-host": {
      type: "string",
      multiple: true,
      valueName: "NAME|SEEN=NAME",
      description:
        "NAME: the registry whose notifications come to POST /events; SEEN=NAME: Pub/Sub payloads naming SEEN are about NAME (repeatable)",
    },
    "pending-grace": {
      type: "string",
      valueName: "SECONDS",
      description: `How long an unexplained tagless manifest push waits for its index or tag (default ${DEFAULT_PENDING_GRACE_MS / 1000})`,
    },
    "reload-interval": {
      type: "string",
      valueName: "SECONDS",
      description: `How often manifests are checked for changes (default ${DEFAULT_RELOAD_INTERVAL_MS / 1000}); they are also checked before a violation is declared`,
    },
    "revision-window": {
      type: "string",
      valueName: "SECONDS",
      description: `How long after it was replaced on the branch a manifest revision still explains events (default ${DEFAULT_REVISION_WINDOW_MS / 1000})`,
    },
    "log-level": { type: "string", valueName: "LEVEL", description: "debug, info (default), warn or error" },
    ...trustedSignerOptionSpecs,
    "sign-identity": {
      type: "string",
      valueName: "REF",
      description:
        "With --public-key/--policy: the name signatures must carry, a prefix or {image} template (default: each image's first destination)",
    },
    "require-approvers": {
      type: "string",
      valueName: "N",
      description: "With --public-key/--policy: a promotion attestation counts with at least N approvers",
    },
    "require-independent-approver": {
      type: "boolean",
      description: "With --public-key/--policy: ... and an approver who is not the pull request's author",
    },
    "trust-max-age": {
      type: "string",
      valueName: "SECONDS",
      description: `With --public-key/--policy: a mirror's verdict older than this is checked again when asked, events or not (default ${DEFAULT_TRUST_MAX_AGE_MS / 1000})`,
    },
    ...registryPolicyOptionSpecs,
    ...registryOptionSpecs,
  },
  async run({ io, values }) {
    const gitUrl = await secretOption(values, "git-url", io);
    const origin = manifestOrigin(values, gitUrl?.value);
    const listenText = stringOption(values, "listen");
    if (listenText === undefined) throw new UsageError("--listen HOST:PORT is required");
    const listen = parseListen(listenText);
    const tokenFile = stringOption(values, "token-file");
    if (tokenFile === undefined) throw new UsageError("--token-file FILE is required");
    const readerTokenFile = stringOption(values, "reader-token-file");
    const webhookSecret = await secretOption(values, "alert-webhook", io);
    const webhook = webhookSecret?.value;
    if (webhookSecret) {
      const problem = alertWebhookProblem(webhookSecret.value);
      if (problem) throw new UsageError(`${webhookSecret.origin}: ${problem}`);
    }
    const hostMapping = hostMappingOption(values);
    // Also checks the --allow-registry values: a malformed one is a usage error before anything starts.
    const graceSeconds = integerOption(values, "pending-grace", 0, 86_400);
    const reloadSeconds = integerOption(values, "reload-interval", 1, 86_400);
    const windowSeconds = integerOption(values, "revision-window", 0, 7 * 86_400);
    const revisionWindowMs = windowSeconds === undefined ? DEFAULT_REVISION_WINDOW_MS : windowSeconds * 1000;
    const logger = createCliLogger(io.stdout, {
      format: "json",
      level: parseLogLevel(stringOption(values, "log-level")),
    });
    const { token, looseMode } = await readTokenFile(path.resolve(io.cwd, tokenFile));
    // The token and the webhook URL are credentials: no log line or alert may carry them.
    const secrets = io.secrets;
    secrets?.add(token);
    if (webhook !== undefined) {
      const { pathname, search } = new URL(webhook);
      secrets?.add(webhook);
      secrets?.add(`${pathname}${search}`);
    }
    if (looseMode)
      logger.log("warn", "the token file is readable by group or others; chmod 600 it", { tokenFile });
    let readerToken: string | undefined;
    if (readerTokenFile !== undefined) {
      const reader = await readTokenFile(path.resolve(io.cwd, readerTokenFile), "--reader-token-file");
      if (reader.token === token) {
        throw new UsageError(
          "--reader-token-file holds the same token as --token-file: a reader must not be able to send notifications",
        );
      }
      if (reader.looseMode) {
        logger.log("warn", "the reader token file is readable by group or others; chmod 600 it", {
          readerTokenFile,
        });
      }
      readerToken = reader.token;
      secrets?.add(reader.token);
    }
    let viewerToken: string | undefined;
    const viewerTokenFile = stringOption(values, "viewer-token-file");
    if (viewerTokenFile !== undefined) {
      const viewer = await readTokenFile(path.resolve(io.cwd, viewerTokenFile), "--viewer-token-file");
      if (viewer.token === token) {
        throw new UsageError(
          "--viewer-token-file holds the same token as --token-file: a viewer must not be able to send notifications",
        );
      }
      if (viewer.looseMode) {
        logger.log("warn", "the viewer token file is readable by group or others; chmod 600 it", {
          viewerTokenFile,
        });
      }
      viewerToken = viewer.token;
      secrets?.add(viewer.token);
    }
    let acknowledgers: Map<string, string> | undefined;
    const acknowledgerTokensFile = stringOption(values, "acknowledger-tokens-file");
    if (acknowledgerTokensFile !== undefined) {
      const read = await readAcknowledgerTokens(path.resolve(io.cwd, acknowledgerTokensFile));
      for (const [name, secret] of read.acknowledgers) {
        if (secret === token || secret === viewerToken) {
          throw new UsageError(
            `--acknowledger-tokens-file: the token of ${name} is the notification or viewer token; give each its own`,
          );
        }
        secrets?.add(secret);
      }
      if (read.looseMode) {
        logger.log("warn", "the acknowledger tokens file is readable by group or others; chmod 600 it", {
          acknowledgerTokensFile,
        });
      }
      acknowledgers = read.acknowledgers;
    }
    if (hostMapping.explicit.size > 0) {
      logger.log(
        "warn",
        "--registry-host SEEN=NAME applies to Pub/Sub payloads only: distribution notifications name their registry by their endpoint, POST /events/NAME",
      );
    }
    warnAboutSecret(logger, webhookSecret, "the alert webhook URL", true);
    warnAboutSecret(
      logger,
      gitUrl,
      "the git URL",
      gitUrl !== undefined && gitUrlHasCredentials(gitUrl.value),
    );
    const dbPath = path.resolve(io.cwd, stringOption(values, "db") ?? DEFAULT_AUDIT_DB);
    const trustSettings = await trustSettingsFromOptions(values, io);

    const metrics = new AuditMetrics();
    // The watcher's callbacks run before the auditor exists (the first load) and after.
    const running: { auditor?: Auditor } = {};
    const watcher = new ManifestWatcher({
      origin,
      cwd: io.cwd,
      allowRegistry: stringListOption(values, "allow-registry"),
      logger,
      ...(reloadSeconds === undefined ? {} : { intervalMs: reloadSeconds * 1000 }),
      revisionWindowMs,
      onState: (loaded) => {
        metrics.manifestReloads += 1;
        metrics.lastManifestLoad = Date.now();
        metrics.desiredRepositories = loaded.state.repositories.size;
        metrics.desiredEdges = loaded.state.edgeCount;
        logger.log("info", "manifests loaded", {
          repositories: loaded.state.repositories.size,
          edges: loaded.state.edgeCount,
          errors: loaded.errors.length,
          warnings: loaded.warnings,
        });
        running.auditor?.setDesiredState(loaded.state, loaded.revision);
      },
      onChecked: (outcome) => {
        metrics.manifestChecks += 1;
        if (outcome.result === "failed") metrics.manifestCheckFailures += 1;
        if (outcome.result === "unchanged" || outcome.result === "reloaded") {
          metrics.lastManifestLoad = Date.now();
        }
        running.auditor?.manifestsChecked(outcome);
      },
      onBroken: (message, details) => {
        metrics.manifestReloadFailures += 1;
        if (running.auditor) running.auditor.raiseAlert(message, details);
        else logger.log("error", message, details);
      },
    });
    logger.log("info", "loading manifests", { source: watcher.describe() });
    const initial = await watcher.loadInitial(io.signal).catch(async (error: unknown) => {
      await watcher.close();
      throw manifestLoadError(error, watcher.describe());
    });

    const store = FindingStore.open(dbPath);
    const provider = storeProviderFromOptions(values, io, logger);
    const alerts: AlertSink | undefined =
      webhook === undefined
        ? undefined
        : new WebhookAlertSink({
            url: webhook,
            logger,
            ...(secrets ? { redact: (text: string) => secrets.redact(text) } : {}),
          });
    const lookup = new RegistryManifestLookup({
      provider,
      logger,
      verifiedTagFor: (repository, digest) => store.verifiedTagFor(repository, digest) as Tag | undefined,
      signal: io.signal,
    });
    const auditor = new Auditor(initial.state, {
      store,
      lookup,
      logger,
      metrics,
      history: watcher,
      revision: initial.revision,
      revisionWindowMs,
      ...(alerts ? { alerts } : {}),
      ...(graceSeconds === undefined ? {} : { pendingGraceMs: graceSeconds * 1000 }),
    });
    running.auditor = auditor;
    const trust = trustSettings
      ? new TrustCache({
          verify: registryPlaceVerifier(provider, trustSettings.expectation),
          desiredState: () => auditor.desiredState,
          ...(trustSettings.identity === undefined ? {} : { identity: trustSettings.identity }),
          ...(trustSettings.maxAgeMs === undefined ? {} : { maxAgeMs: trustSettings.maxAgeMs }),
          logger,
        })
      : undefined;
    let server;
    try {
      auditor.start();
      server = await startAuditServer(
        {
          auditor,
          store,
          metrics,
          token,
          ...(readerToken ? { readerToken } : {}),
          ...(viewerToken ? { viewerToken } : {}),
          ...(acknowledgers ? { acknowledgers } : {}),
          ...(trust ? { trust } : {}),
          hostMapping,
          logger,
          ...(secrets ? { redact: (text: string) => secrets.redact(text) } : {}),
        },
        listen,
      );
    } catch (error) {
      trust?.close();
      await auditor.close();
      store.close();
      await watcher.close();
      await provider.close();
      throw new UsageError(`cannot listen on ${listenText}: ${describeError(error)}`, { cause: error });
    }
    watcher.start();
    logger.log("info", "audit server listening", {
      url: server.url,
      manifests: watcher.describe(),
      database: dbPath,
      plainEvents:
        hostMapping.fallback === undefined
          ? "POST /events is attributed to no registry: its events are violations"
          : `POST /events is about ${hostMapping.fallback}`,
      alertWebhook: webhook === undefined ? null : new URL(webhook).origin,
      findings: readerToken
        ? "GET /findings with the reader token"
        : "GET /findings refused (no --reader-token-file)",
      statusPage:
        viewerToken !== undefined || acknowledgers !== undefined
          ? `${server.url}/status`
          : "off (no --viewer-token-file)",
      statusSignatures: trust
        ? "verified (trust settings given)"
        : "not verified (give --public-key or --policy to verify them)",
    });

    await aborted(io.signal);
    logger.log("info", "audit server stopping");
    await server.close();
    trust?.close();
    await watcher.close();
    await auditor.close();
    await alerts?.drain(SHUTDOWN_ALERT_DRAIN_MS);
    alerts?.close();
    store.close();
    await provider.close();
    logger.log("info", "audit server stopped");
    return ExitCode.ok;
  },
};
