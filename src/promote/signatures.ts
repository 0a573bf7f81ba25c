import type { Semaphore } from "../concurrency/index.js";
import { RepositoryKeyCache, type Digest } from "../reference/index.js";
import type { Logger } from "../log.js";
import { type EdgeOutcome, type EdgeOutcomeKind } from "../plan/index.js";
import type { RepositoryOpener } from "../registry/index.js";
import {
  executeAttachments,
  type AttachmentOutcome,
  type AttachmentPlan,
  type ImageSigner,
  type SignatureTarget,
} from "../sign/index.js";
import { copyKey, edgeCopyKey, type ExecutionResult } from "./execute.js";

/**
 * The signature step of a promotion, after the copy: signatures and attachments go to the
 * destinations where the promoted digest now is. An edge whose image arrived but whose
 * signature or attachment could not be written there is `failed` (`signature-failed` or
 * `attachment-failed`): the run did not reach the wanted state, and the next run repairs it.
 */

export interface ExecuteSignaturesOptions {
  readonly provider: RepositoryOpener;
  readonly signer?: ImageSigner;
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
  /** Promoted digests whose signatures are made and written at once (default 8). */
  readonly concurrency?: number;
  /** Slots shared with other calls instead of `concurrency` (see `ExecuteAttachmentsOptions`). */
  readonly slots?: Semaphore;
}

const DONE: ReadonlySet<EdgeOutcomeKind> = new Set(["copied", "tagged", "unchanged"]);

export async function executeSignatures(
  plan: AttachmentPlan,
  execution: ExecutionResult,
  options: ExecuteSignaturesOptions,
): Promise<ExecutionResult> {
  const keys = new RepositoryKeyCache();
  // Source repository -> digest -> destination repositories where it is: no key string per edge
  // (the real registry.k8s.io tree has ~720,000).
  const present = new Map<string, Map<Digest, Set<string>>>();
  for (const { edge, outcome } of execution.outcomes) {
    if (!DONE.has(outcome)) continue;
    const sourceKey = keys.of(edge.source);
    let bySource = present.get(sourceKey);
    if (!bySource) present.set(sourceKey, (bySource = new Map<Digest, Set<string>>()));
    let destinations = bySource.get(edge.digest);
    if (!destinations) bySource.set(edge.digest, (destinations = new Set()));
    destinations.add(keys.of(edge.destination));
  }
  const isPresent = (target: SignatureTarget, destinationKey: string): boolean =>
    present.get(target.sourceKey)?.get(target.digest)?.has(destinationKey) ?? false;
  const attachments = await executeAttachments(plan, {
    provider: options.provider,
    isPresent,
    ...(options.signer ? { signer: options.signer } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    ...(options.slots ? { slots: options.slots } : {}),
  });

  const failures = new Map<string, AttachmentOutcome>();
  for (const outcome of attachments) {
    if (outcome.status !== "failed") continue;
    const key = copyKey(outcome.target.sourceKey, outcome.target.digest, outcome.destination);
    if (!failures.has(key)) failures.set(key, outcome);
  }
  if (failures.size === 0) return { ...execution, attachments };
  const outcomes = execution.outcomes.map((edgeOutcome): EdgeOutcome => {
    if (!DONE.has(edgeOutcome.outcome)) return edgeOutcome;
    const { edge } = edgeOutcome;
    const failure = failures.get(edgeCopyKey(keys, edge));
    if (!failure) return edgeOutcome;
    const signature = failure.kind === "sig" || failure.kind === "bundle" || failure.kind === "subjects";
    const what = signature ? "signature" : `${failure.tag ?? failure.kind} attachment`;
    return {
      ...edgeOutcome,
      outcome: "failed",
      error: {
        code: signature ? "signature-failed" : "attachment-failed",
        message: `the image is ${edgeOutcome.outcome === "unchanged" ? "in place" : edgeOutcome.outcome}, but the ${what} of ${failure.subject} could not be written: ${failure.error?.message ?? "unknown error"}`,
      },
    };
  });
  return { ...execution, outcomes, attachments };
}
