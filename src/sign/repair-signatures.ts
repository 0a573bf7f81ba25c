import type { Logger } from "../log.js";
import type { AttachmentPlan, SignatureFormat, SignatureTarget } from "./attachment-plan.js";
import { executeAttachments, type AttachmentOutcome } from "./execute-attachments.js";
import { planAttachments } from "./plan-attachments.js";
import type { ImageSigner } from "./signer.js";
import { verifyTargets, type VerifyResult, type VerifyTargetsOptions } from "./verify-targets.js";

/**
 * `promoter verify --repair`: missing or invalid signatures are fixed where the image is, by
 * copying the signature manifests found at the other destinations (their union) or, with a
 * signer, by signing where none of ours fully verifies (docs/signing.md).
 */

/**
 * Targets with a missing or invalid signature, limited to the destinations that hold the digest
 * (the others become `elsewhere`: read for our signature, never written).
 */
export function repairTargets(
  targets: readonly SignatureTarget[],
  results: readonly VerifyResult[],
): SignatureTarget[] {
  const byTarget = new Map<SignatureTarget, VerifyResult[]>();
  for (const result of results) {
    const list = byTarget.get(result.target);
    if (list) list.push(result);
    else byTarget.set(result.target, [result]);
  }
  const broken: SignatureTarget[] = [];
  for (const target of targets) {
    const own = byTarget.get(target) ?? [];
    if (!own.some((result) => result.status === "missing" || result.status === "invalid")) continue;
    const present = new Set(
      own
        .filter((result) => result.status !== "not-promoted" && result.status !== "unreadable")
        .map((result) => result.destination),
    );
    // The others (without the image, or unreadable just now) are only read, for our signature.
    const elsewhere = [
      ...(target.elsewhere ?? []),
      ...target.destinations.filter((destination) => !present.has(destination.key)),
    ];
    broken.push({
      ...target,
      destinations: target.destinations.filter((destination) => present.has(destination.key)),
      ...(elsewhere.length > 0 ? { elsewhere } : {}),
    });
  }
  return broken;
}

export interface RepairSignaturesOptions extends VerifyTargetsOptions {
  /** Write the repair; without it the repair is only planned. */
  readonly confirm: boolean;
  /** Sign where no signature of ours verifies anywhere. */
  readonly signer?: ImageSigner;
  readonly format?: SignatureFormat;
  readonly logger?: Logger;
}

export interface SignatureRepair {
  /** What the repair writes (or would write without `confirm`). */
  readonly plan: AttachmentPlan;
  /** With `confirm`: what was written. */
  readonly outcomes?: readonly AttachmentOutcome[];
  /** The results with the repaired targets checked again (with `confirm`; else as given). */
  readonly results: readonly VerifyResult[];
}

/** Plans, and with `confirm` writes and re-checks, the repair; undefined when nothing is broken. */
export async function repairSignatures(
  targets: readonly SignatureTarget[],
  results: readonly VerifyResult[],
  options: RepairSignaturesOptions,
): Promise<SignatureRepair | undefined> {
  const broken = repairTargets(targets, results);
  if (broken.length === 0) return undefined;
  const { provider, signer, signal, logger } = options;
  const call = {
    ...(signer ? { signer } : {}),
    ...(signal ? { signal } : {}),
    ...(logger ? { logger } : {}),
  };
  const plan = await planAttachments(broken, {
    provider,
    ...call,
    ...(options.format ? { format: options.format } : {}),
    attachments: "none",
    ...(options.signChildren === undefined ? {} : { signChildren: options.signChildren }),
    mirrorSignatures: true,
  });
  if (!options.confirm) return { plan, results };
  const outcomes = await executeAttachments(plan, { provider, ...call });
  // What remains after the repair: the repaired targets as they are now, the others as they were.
  const repaired = new Set(broken.map((target) => target.sourceKey + target.digest));
  const rechecked = await verifyTargets(broken, options);
  return {
    plan,
    outcomes,
    results: [
      ...results.filter((result) => !repaired.has(result.target.sourceKey + result.target.digest)),
      ...rechecked,
    ],
  };
}
