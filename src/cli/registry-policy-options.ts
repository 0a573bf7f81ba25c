import { registryPolicyAtRevision } from "../gitops/index.js";
import type { RegistryPolicy } from "../manifest/index.js";
import {
  loadRegistryPolicy,
  parseAllowRegistryOptions,
  type ManifestInput,
} from "../manifest-files/index.js";
import type { InternalAddressPolicy } from "../registry/index.js";
import { stringListOption, type OptionSpecs, type ParsedValues } from "./command.js";
import type { CliIO } from "./io.js";

/**
 * `--allow-registry`, shared by the commands that read manifests (validate, check, promote): the
 * operator's exceptions to the registry policy (docs/manifest-format.md, "Registry policy").
 * Registries on this machine or a private network, and `oci:` layouts outside the manifest tree,
 * are refused unless named here; the tree itself can never allow them.
 */
export const registryPolicyOptionSpecs = {
  "allow-registry": {
    type: "string",
    multiple: true,
    valueName: "NAME",
    description:
      "Manifests may name this registry (HOST[:PORT][/PATH]) even on a loopback or private address, or this oci:DIR outside the tree (repeatable)",
  },
} as const satisfies OptionSpecs;

/**
 * The registry policy for `input`. With `revision` (check --base, a dry-run promote --changed-since) the
 * tree's allow-list is the one at that revision, so a change is judged by the policy it is based on.
 */
export async function registryPolicyFromOptions(
  values: ParsedValues,
  io: CliIO,
  input: ManifestInput,
  revision?: string,
): Promise<RegistryPolicy> {
  const allowRegistry = stringListOption(values, "allow-registry");
  // Flags first: a malformed --allow-registry is a usage error before git is asked anything.
  parseAllowRegistryOptions(allowRegistry, io.cwd);
  const treeAllowList =
    revision === undefined
      ? undefined
      : await registryPolicyAtRevision(input, revision, { cwd: io.cwd, signal: io.signal });
  return loadRegistryPolicy(input, {
    cwd: io.cwd,
    signal: io.signal,
    allowRegistry,
    ...(treeAllowList === undefined ? {} : { treeAllowList }),
  });
}

/**
 * The connection guard of the commands that read manifests: every connection to an internal
 * address is refused (checked on IP literals and on every DNS answer, so a public-looking name
 * that resolves to this machine is caught too), except on the hosts of `--allow-registry`.
 */
export function internalAddressPolicyFromOptions(values: ParsedValues, io: CliIO): InternalAddressPolicy {
  const allowed = parseAllowRegistryOptions(stringListOption(values, "allow-registry"), io.cwd).flatMap(
    (entry) => {
      if (entry.kind !== "remote") return [];
      const host = entry.hostname.includes(":") ? `[${entry.hostname}]` : entry.hostname;
      return [entry.port === undefined ? host : `${host}:${entry.port}`];
    },
  );
  return { refuse: true, allowed };
}
