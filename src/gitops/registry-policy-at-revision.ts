import { REGISTRY_POLICY_FILE, type Finding, type ManifestText } from "../manifest/index.js";
import type { ManifestInput } from "../manifest-files/index.js";
import { readThinTreeFileAtRevision, type RevisionOptions } from "./revision-manifests.js";

/**
 * The registry allow-list of a thin tree (`manifests/registry-policy.yaml`) as it was at a git
 * revision. `check --base REV` and a dry-run `promote --changed-since REV` judge a change by the policy it
 * was based on: the change itself (a pull request) cannot widen the registries it may name.
 * `null` when the file did not exist at the revision; a plain manifest has no allow-list file.
 * Read as the manifests at that revision are (revision-manifests.ts): from the trusted repository,
 * a regular file only; otherwise a finding, and an allow-list that cannot be read allows nothing.
 */
export async function registryPolicyAtRevision(
  input: ManifestInput,
  revision: string,
  options: RevisionOptions,
): Promise<ManifestText | { readonly finding: Finding } | null | undefined> {
  if (input.thinManifestDir === undefined) return undefined;
  return readThinTreeFileAtRevision(
    input.thinManifestDir,
    `manifests/${REGISTRY_POLICY_FILE}`,
    revision,
    options,
  );
}
