import { describeError } from "../errors.js";
import type { Logger } from "../log.js";
import { slackText } from "../output/encode.js";
import {
  backoffDelayMs,
  isRetryableStatus,
  parseRetryAfter,
  systemClock,
  type Clock,
} from "../registry/index.js";

/**
 * Alert delivery to a Slack-compatible incoming webhook (`{"text": ...}`, which Slack, Mattermost,
 * Rocket.Chat, Google Chat and most chat bridges accept). Deliveries run one at a time in the
 * background, in order, each retried on network errors and the statuses registry requests retry
 * (408, 429, 5xx), with the same backoff and `Retry-After` reading (registry/transport/retry.ts).
 * The webhook URL is a secret (it is the credential): it
 * never appears in logs or errors, only its origin. Alert text carries outside text (event ids,
 * repositories, registry hosts): the sink is the one place it is encoded for Slack
 * (`slackText`) and stripped of known secrets (`redact`), so callers send plain text.
 */

export const DEFAULT_ALERT_ATTEMPTS = 5;
export const DEFAULT_ALERT_BASE_DELAY_MS = 1000;
export const ALERT_TIMEOUT_MS = 10_000;
/** The longest wait between two attempts, whatever `Retry-After` says. */
export const MAX_ALERT_DELAY_MS = 60_000;
/** Alerts queued beyond this are dropped (and counted as failures): a flood must not eat memory. */
export const MAX_QUEUED_ALERTS = 10_000;
/** Characters of alert text kept: chat services refuse very long messages. */
export const MAX_ALERT_TEXT = 3000;

export type AlertResultListener = (delivered: boolean) => void;

/** What a violation alert says: the finding's rule, what happened to what, why, which event. */
export interface ViolationAlert {
  readonly rule: string;
  /** The event's action (`push`, `delete`). */
  readonly action: string;
  /** `repository[:tag][@digest]`. */
  readonly target: string;
  readonly reason: string;
  readonly eventId: string;
  readonly eventTime: string | null;
}

/**
 * The text of a violation alert. A finding's reason is a sentence of its own, and most already
 * say what happened to what (`pushed REPO:TAG@DIGEST: no manifest asks for tag TAG`): those are
 * not prefixed with the action and target again, others are (`push REPO@DIGEST: ...`).
 */
export function violationAlertText(alert: ViolationAlert): string {
  const event = ` [event ${alert.eventId}${alert.eventTime === null ? "" : ` at ${alert.eventTime}`}]`;
  const said = [alert.action, pastTense(alert.action)].some(
    (verb) =>
      alert.reason.startsWith(`${verb} ${alert.target}: `) ||
      alert.reason.startsWith(`${verb} ${alert.target} `),
  );
  const what = said ? alert.reason : `${alert.action} ${alert.target}: ${alert.reason}`;
  return `promoter audit: violation (${alert.rule}) ${what}${event}`;
}

function pastTense(action: string): string {
  return action.endsWith("e") ? `${action}d` : `${action}ed`;
}

export interface AlertSink {
  /** Queues an alert; `onResult` learns whether it was delivered. Never throws. */
  send(text: string, onResult?: AlertResultListener): void;
  /** Waits until queued alerts are delivered or given up, at most `timeoutMs`. */
  drain(timeoutMs: number): Promise<void>;
  /** Stops: in-flight attempts are aborted, queued alerts are reported as not delivered. */
  close(): void;
}

export interface WebhookAlertOptions {
  readonly url: string;
  readonly logger: Logger;
  readonly attempts?: number;
  readonly baseDelayMs?: number;
  readonly timeoutMs?: number;
  /** Removes the run's known secrets from alert text (the auditor's token, registry credentials). */
  readonly redact?: (text: string) => string;
  /** Time for the waits between attempts; injectable so tests need not wait. */
  readonly clock?: Clock;
  /** A number in [0, 1) for the backoff's jitter; injectable so tests are deterministic. */
  readonly random?: () => number;
}

/**
 * Text for Slack's mrkdwn: `&`, `<` and `>` (its control characters) escaped, and control,
 * bidi and invisible characters as visible escapes. The alert sink applies it to every alert.
 */
export const escapeSlackText = slackText;

/** Validates an alert webhook URL; returns a reason when unusable. */
export function alertWebhookProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "not a URL";
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return "must be an http or https URL";
  if (parsed.username || parsed.password) return "must not carry credentials in the URL user part";
  return undefined;
}

export class WebhookAlertSink implements AlertSink {
  private readonly url: string;
  private readonly origin: string;
  private readonly logger: Logger;
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly timeoutMs: number;
  private readonly redact: (text: string) => string;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly queue: { text: string; onResult: AlertResultListener | undefined }[] = [];
  private readonly controller = new AbortController();
  private running: Promise<void> | undefined;

  constructor(options: WebhookAlertOptions) {
    this.url = options.url;
    this.origin = new URL(options.url).origin;
    this.logger = options.logger;
    this.attempts = Math.max(1, options.attempts ?? DEFAULT_ALERT_ATTEMPTS);
    this.baseDelayMs = options.baseDelayMs ?? DEFAULT_ALERT_BASE_DELAY_MS;
    this.timeoutMs = options.timeoutMs ?? ALERT_TIMEOUT_MS;
    this.redact = options.redact ?? ((text) => text);
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
  }

  send(text: string, onResult?: AlertResultListener): void {
    if (this.controller.signal.aborted || this.queue.length >= MAX_QUEUED_ALERTS) {
      this.logger.log("error", "alert dropped: queue full or alerts stopped", { webhook: this.origin });
      onResult?.(false);
      return;
    }
    this.queue.push({ text, onResult });
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
  }

  async drain(timeoutMs: number): Promise<void> {
    const running = this.running;
    if (!running) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([running, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  close(): void {
    this.controller.abort();
    for (const entry of this.queue.splice(0)) entry.onResult?.(false);
  }

  private stopped(): boolean {
    return this.controller.signal.aborted;
  }

  private async run(): Promise<void> {
    for (let entry = this.queue.shift(); entry; entry = this.queue.shift()) {
      let delivered = false;
      try {
        delivered = await this.deliver(entry.text);
      } catch (error) {
        this.logger.log("error", "alert delivery failed", {
          webhook: this.origin,
          error: describeError(error),
        });
      }
      entry.onResult?.(delivered);
    }
  }

  private async deliver(text: string): Promise<boolean> {
    const shown = slackText(this.redact(text));
    const body = JSON.stringify({
      text: shown.length > MAX_ALERT_TEXT ? `${shown.slice(0, MAX_ALERT_TEXT)}…` : shown,
    });
    let lastProblem = "";
    for (let attempt = 1; attempt <= this.attempts; attempt += 1) {
      if (this.stopped()) return false;
      let waitMs = backoffDelayMs(
        attempt,
        { baseDelayMs: this.baseDelayMs, maxDelayMs: MAX_ALERT_DELAY_MS },
        this.random,
      );
      try {
        const response = await fetch(this.url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
          redirect: "error",
          signal: AbortSignal.any([this.controller.signal, AbortSignal.timeout(this.timeoutMs)]),
        });
        // The body is not needed; release the connection.
        await response.arrayBuffer().catch(() => undefined);
        if (response.ok) return true;
        lastProblem = `HTTP ${response.status}`;
        if (!isRetryableStatus(response.status)) break;
        const after = parseRetryAfter(response.headers.get("retry-after") ?? undefined, this.clock.now());
        if (after !== undefined) waitMs = Math.min(MAX_ALERT_DELAY_MS, after);
      } catch (error) {
        if (this.stopped()) return false;
        lastProblem = describeError(error);
      }
      if (attempt < this.attempts) {
        this.logger.log("warn", "alert delivery failed; retrying", {
          webhook: this.origin,
          attempt,
          problem: lastProblem,
          retryInMs: Math.round(waitMs),
        });
        try {
          await this.clock.sleep(waitMs, this.controller.signal);
        } catch {
          return false; // closed while waiting
        }
      }
    }
    this.logger.log("error", "alert not delivered", { webhook: this.origin, problem: lastProblem });
    return false;
  }
}
