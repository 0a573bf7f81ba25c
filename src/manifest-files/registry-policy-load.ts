import * as path from "node:path";
import { UsageError } from "../errors.js";
import {
  parseAllowedRegistry,
  parseRegistryPolicyFile,
  REGISTRY_POLICY_FILE,
  type AllowedRegistry,
  type Finding,
  type ManifestText,
  type RegistryPolicy,
  type TreeAllowList,
} from "../manifest/index.js";
import { readTreeFile, type ManifestInput } from "./load.js";
import { realDirectory } from "./real-directory.js";

/**
 * The I/O edge of the registry policy: the operator's `--allow-registry` entries, the tree's
 * allow-list file (from the working copy, or as given: `check` and a dry-run `promote --changed-since`
 * pass the one at the base revision, so a change cannot widen the policy it is judged by), and
 * how symbolic links resolve for the `oci:` confinement.
 */

export interface RegistryPolicyOptions {
  readonly cwd: string;
  readonly signal?: AbortSignal | undefined;
  /** `--allow-registry` values as typed: `HOST[:PORT][/PATH]` or `oci:DIR` (relative to `cwd`). */
  readonly allowRegistry?: readonly string[];
  /**
   * The allow-list file's text from elsewhere (a git revision); `null` when it did not exist
   * there. Default: read `manifests/registry-policy.yaml` of the thin tree from disk.
   */
  readonly treeAllowList?: ManifestText | { readonly finding: Finding } | null;
}

/** `--allow-registry` values as allow-list entries; a malformed one is a usage error (exit 2). */
export function parseAllowRegistryOptions(values: readonly string[], cwd: string): AllowedRegistry[] {
  return values.map((value) => {
    const parsed = parseAllowedRegistry(value, cwd);
    if ("problem" in parsed)
      throw new UsageError(`--allow-registry ${JSON.stringify(value)}: ${parsed.problem}`);
    return parsed.allowed;
  });
}

export { realDirectory } from "./real-directory.js";

/** The tree a manifest input names: a thin tree's root, or the folder of a plain manifest. */
export function manifestTreeRoot(input: ManifestInput, cwd: string): string {
  return input.manifest !== undefined
    ? path.dirname(path.resolve(cwd, input.manifest))
    : path.resolve(cwd, input.thinManifestDir ?? "");
}

/** The allow-list file of a thin tree. */
export function registryPolicyFile(treeRoot: string): string {
  return path.join(treeRoot, "manifests", REGISTRY_POLICY_FILE);
}

/** The registry policy for `input`: the operator's entries, the tree's allow-list, the tree root. */
export async function loadRegistryPolicy(
  input: ManifestInput,
  options: RegistryPolicyOptions,
): Promise<RegistryPolicy> {
  const operatorAllowed = parseAllowRegistryOptions(options.allowRegistry ?? [], options.cwd);
  const treeRoot = manifestTreeRoot(input, options.cwd);
  const base = { treeRoot, operatorAllowed, realDirectory };
  if (input.thinManifestDir === undefined) return base;

  let text = options.treeAllowList;
  if (text === undefined) {
    const file = registryPolicyFile(treeRoot);
    const read = await readTreeFile(treeRoot, file, { cwd: options.cwd, signal: options.signal });
    text = read === undefined ? null : "finding" in read ? read : { file, text: read.text };
  }
  if (text === null) return base;
  if ("finding" in text) {
    // An allow-list that cannot be read allows nothing: refuse rather than allow.
    const allowList: TreeAllowList = { file: text.finding.position.file, entries: [] };
    return { ...base, treeAllowList: allowList, findings: [text.finding] };
  }
  const { allowList, findings } = parseRegistryPolicyFile(text);
  return { ...base, treeAllowList: allowList, findings };
}
