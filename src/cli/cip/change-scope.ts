import { UsageError } from "../../errors.js";
import { lastCommitBefore, locateRepository } from "../../gitops/index.js";

/**
 * What a `cip` run promotes: everything the manifests ask for (a full run, kpromo's backstop),
 * or only the edges a change added since a base commit (`--use-prow-manifest-diff`,
 * `--manifest-diff-since`). kpromo narrows to the digests found in the text of `git diff`;
 * here the manifests at the base are compared with the working copy edge by edge (the same
 * comparison as `promote --changed-since`), so a new mirror line scopes the run to that
 * mirror's edges and an unquoted digest is not missed.
 */
export type CipScope =
  | { readonly kind: "full" }
  | { readonly kind: "change"; readonly base: string; readonly why: string }
  /** A time window longer than the branch's history: every edge counts as added. */
  | { readonly kind: "everything-new"; readonly why: string };

/** Prow's job types (prow/jobs.md "Job Environment Variables"). */
export const PRESUBMIT_JOB_TYPES: ReadonlySet<string> = new Set(["presubmit", "batch"]);

/**
 * `--use-prow-manifest-diff`: the base of the change the Prow job runs for, as kpromo takes it.
 * A presubmit (or batch) tests the pull request merged onto `PULL_BASE_SHA`; a postsubmit runs
 * on the merge commit, whose first parent is the branch before the merge.
 */
export function prowChangeScope(env: NodeJS.ProcessEnv): CipScope {
  const jobType = env.JOB_TYPE;
  if (jobType === undefined || jobType === "") {
    throw new UsageError("--use-prow-manifest-diff needs Prow's JOB_TYPE (presubmit, batch or postsubmit)");
  }
  if (PRESUBMIT_JOB_TYPES.has(jobType)) {
    const base = env.PULL_BASE_SHA;
    if (base === undefined || !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(base)) {
      throw new UsageError(
        `--use-prow-manifest-diff in a ${jobType} job needs PULL_BASE_SHA, the commit id of the base branch`,
      );
    }
    return {
      kind: "change",
      base,
      why: `Prow ${jobType}: edges added since PULL_BASE_SHA ${base.slice(0, 12)}`,
    };
  }
  if (jobType === "postsubmit") {
    return {
      kind: "change",
      base: "HEAD^",
      why: "Prow postsubmit: edges the merged commit added (since HEAD^)",
    };
  }
  throw new UsageError(
    `--use-prow-manifest-diff works in presubmit, batch and postsubmit jobs, not JOB_TYPE=${JSON.stringify(jobType)}`,
  );
}

/** `--manifest-diff-since`: the edges added since the branch's state at `since`. */
export async function timeWindowScope(
  since: Date,
  text: string,
  options: { readonly cwd: string; readonly signal?: AbortSignal },
): Promise<CipScope> {
  const repository = await locateRepository(options.cwd, options.signal ? { signal: options.signal } : {});
  const base = await lastCommitBefore(since, {
    repository,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const when = since.toISOString();
  if (base === undefined) {
    return {
      kind: "everything-new",
      why: `--manifest-diff-since ${text}: the branch has no commit before ${when}, so every edge counts as added`,
    };
  }
  return {
    kind: "change",
    base,
    why: `--manifest-diff-since ${text}: edges added since ${when} (commit ${base.slice(0, 12)})`,
  };
}
