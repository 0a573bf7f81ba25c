import * as path from "node:path";
import {
  canonicalRegistryHostProblem,
  internalHostReason,
  OCI_LAYOUT_PREFIX,
  parseIpAddress,
  registryLocationProblem,
  sameIpAddress,
  splitRegistryHost,
  type IpAddress,
  type RegistryLocation,
} from "../reference/index.js";
import { makeFinding } from "./finding.js";
import type { Finding, PromotionManifest, RegistryEntry } from "./model.js";
import type { ManifestText } from "./parse.js";
import { ManifestReader } from "./reader.js";
import { parseYamlSource, readWithinLimits } from "./yaml-source.js";

/**
 * Which registries a promotion manifest may name (docs/manifest-format.md, "Registry policy").
 * A pull-request author writes every file of a manifest tree, registries included, and CI runs
 * `check` and a dry-run `promote` on it before anyone has reviewed it; so the registries a
 * manifest names are checked before any request:
 *
 * - a registry on this machine or a private network (loopback, private, link-local addresses in
 *   any spelling, `localhost`, single-label and private-suffix names) only when the operator
 *   allows it with `--allow-registry`; a tree cannot allow it for itself;
 * - an `oci:` layout only inside the manifest tree (after symbolic links), unless the operator
 *   allows a directory outside it;
 * - when the tree has an allow-list (`manifests/registry-policy.yaml`, owned like the registries
 *   files), only the registries it lists; without one, any public registry.
 *
 * Pure: the loader passes how symbolic links resolve. A refused registry stays in the model
 * without a location, like an invalid name: nothing is read from or written to it, and the rest
 * of the manifest is promoted as usual.
 */

/** The allow-list file of a thin tree, beside the project folders: `manifests/registry-policy.yaml`. */
export const REGISTRY_POLICY_FILE = "registry-policy.yaml";

/** A registry (and everything below it) that may be named: `HOST[:PORT][/PATH]` or `oci:DIR`. */
export type AllowedRegistry =
  | {
      readonly kind: "remote";
      /** Lower case; an IPv6 address without brackets. */
      readonly hostname: string;
      readonly address: IpAddress | undefined;
      /** Undefined: any port. */
      readonly port: string | undefined;
      /** Path components the registry name must start with (empty: the whole host). */
      readonly path: readonly string[];
      readonly name: string;
    }
  | { readonly kind: "oci-layout"; readonly directory: string; readonly name: string };

/** Parses an allow-list entry; a relative `oci:` directory is resolved against `cwd`. */
export function parseAllowedRegistry(
  name: string,
  cwd: string,
): { allowed: AllowedRegistry } | { problem: string } {
  if (name.startsWith(OCI_LAYOUT_PREFIX)) {
    const problem = registryLocationProblem(name);
    if (problem) return { problem };
    return {
      allowed: {
        kind: "oci-layout",
        directory: path.resolve(cwd, name.slice(OCI_LAYOUT_PREFIX.length)),
        name,
      },
    };
  }
  const slash = name.indexOf("/");
  const host = slash < 0 ? name : name.slice(0, slash);
  const problem =
    canonicalRegistryHostProblem(host) ?? (slash < 0 ? undefined : registryLocationProblem(name));
  if (problem) return { problem };
  const { hostname, port } = splitRegistryHost(host);
  return {
    allowed: {
      kind: "remote",
      hostname,
      address: parseIpAddress(hostname),
      port,
      path: slash < 0 ? [] : name.slice(slash + 1).split("/"),
      name,
    },
  };
}

/** The registries a tree allows (its `manifests/registry-policy.yaml`). */
export interface TreeAllowList {
  readonly file: string;
  /** Valid entries; invalid ones are findings (and allow nothing). */
  readonly entries: readonly AllowedRegistry[];
}

export interface RegistryPolicy {
  /** oci: layouts must be inside this directory: a thin tree's root, or a plain manifest's folder. */
  readonly treeRoot: string;
  /** What the operator allowed (`--allow-registry`): internal hosts, and oci: directories anywhere. */
  readonly operatorAllowed: readonly AllowedRegistry[];
  /** The tree's allow-list; undefined when the tree has none (any public registry may be named). */
  readonly treeAllowList?: TreeAllowList;
  /** Findings about the allow-list file itself (reported with the manifests' findings). */
  readonly findings?: readonly Finding[];
  /** Where a directory really is, symbolic links resolved (the loader's I/O); default: as written. */
  readonly realDirectory?: (directory: string) => string;
}

const POLICY_KEYS = ["registries"] as const;

/**
 * Parses an allow-list file: `registries:`, a list of `HOST[:PORT][/PATH]`. Every problem is a
 * finding at its position; an entry with a problem allows nothing (so a mistake refuses rather
 * than allows). Entries cannot allow internal hosts or oci: layouts: only the operator can.
 */
export function parseRegistryPolicyFile(input: ManifestText): {
  allowList: TreeAllowList;
  findings: Finding[];
} {
  const findings: Finding[] = [];
  const entries: AllowedRegistry[] = [];
  const { source, findings: yamlFindings } = parseYamlSource(input.text, input.file);
  findings.push(...yamlFindings);
  if (source) {
    const reader = new ManifestReader(source, findings);
    readWithinLimits(source, findings, () => {
      const root = reader.resolve(source.root);
      if (root === undefined || reader.isNull(root)) return;
      const map = reader.mapping(root, "a registry policy");
      if (!map) return;
      const list = reader.fields(map, POLICY_KEYS, "the registry policy").get("registries");
      if (list?.value === undefined || reader.isNull(list.value)) return;
      const items = reader.sequence(list.value, "registries");
      for (const item of items?.items ?? []) {
        const node = reader.resolve(item);
        const entry = reader.string(node, "a registry", list.keyPosition);
        if (!entry) continue;
        const parsed = parseAllowedRegistry(entry.value, path.dirname(input.file));
        let problem = "problem" in parsed ? parsed.problem : undefined;
        if (!problem && "allowed" in parsed && parsed.allowed.kind === "oci-layout") {
          problem =
            "oci: layouts inside the tree need no entry, and only the operator can allow one outside it (--allow-registry oci:DIR)";
        }
        const internal =
          !problem && "allowed" in parsed && parsed.allowed.kind === "remote"
            ? internalHostReason(entry.value.split("/")[0] ?? "")
            : undefined;
        if (internal !== undefined) {
          problem = `it is ${internal}: only the operator can allow such a registry (--allow-registry)`;
        }
        if (problem) {
          reader.report(
            "invalid-registry-policy",
            entry.position,
            `${JSON.stringify(entry.value)}: ${problem}`,
          );
        } else if ("allowed" in parsed) {
          entries.push(parsed.allowed);
        }
      }
    });
  }
  return { allowList: { file: input.file, entries }, findings };
}

function remoteMatches(
  allowed: AllowedRegistry,
  location: Extract<RegistryLocation, { kind: "remote" }>,
): boolean {
  if (allowed.kind !== "remote") return false;
  const { hostname, port } = splitRegistryHost(location.host);
  if (allowed.port !== undefined && allowed.port !== port) return false;
  const address = parseIpAddress(hostname);
  const sameHost =
    address !== undefined && allowed.address !== undefined
      ? sameIpAddress(address, allowed.address)
      : allowed.hostname === hostname;
  if (!sameHost) return false;
  const prefix = location.prefix === "" ? [] : location.prefix.split("/");
  return allowed.path.every((component, index) => prefix[index] === component);
}

/** Whether `inner` is `outer` or below it (both absolute). */
export function isWithinDirectory(outer: string, inner: string): boolean {
  const relative = path.relative(outer, inner);
  return relative === "" || (!relative.startsWith("..") && !path.isAbsolute(relative));
}

function display(root: string, file: string): string {
  const relative = path.relative(root, file);
  return relative.startsWith("..") || path.isAbsolute(relative) ? file : relative;
}

/** Why the policy refuses a registry entry, or undefined when it may be used. */
export function registryRefusal(location: RegistryLocation, policy: RegistryPolicy): string | undefined {
  const realDirectory = policy.realDirectory ?? ((directory: string) => directory);
  if (location.kind === "oci-layout") {
    const real = realDirectory(location.directory);
    const allowed = policy.operatorAllowed.some(
      (entry) => entry.kind === "oci-layout" && isWithinDirectory(realDirectory(entry.directory), real),
    );
    if (allowed || isWithinDirectory(realDirectory(policy.treeRoot), real)) return undefined;
    const where = real === location.directory ? location.directory : `${location.directory} (really ${real})`;
    return `the OCI layout directory ${where} is outside the manifest tree ${policy.treeRoot}; only the operator can allow it (--allow-registry oci:DIR)`;
  }
  if (policy.operatorAllowed.some((entry) => remoteMatches(entry, location))) return undefined;
  const internal = internalHostReason(location.host);
  if (internal !== undefined) {
    return `${location.host} is ${internal}; only the operator can allow such a registry (--allow-registry ${location.host})`;
  }
  const allowList = policy.treeAllowList;
  if (allowList && !allowList.entries.some((entry) => remoteMatches(entry, location))) {
    return `it is not in the registry policy ${display(policy.treeRoot, allowList.file)}`;
  }
  return undefined;
}

/**
 * The manifests with every registry the policy refuses left without a location (so nothing
 * reads from or writes to it), and one `registry-not-allowed` finding per refused entry, plus
 * the findings of the allow-list file.
 */
export function applyRegistryPolicy(
  manifests: readonly PromotionManifest[],
  policy: RegistryPolicy,
): { manifests: PromotionManifest[]; findings: Finding[] } {
  const findings: Finding[] = [...(policy.findings ?? [])];
  const result = manifests.map((manifest) => {
    const registries = manifest.registries.map((registry): RegistryEntry => {
      if (!registry.location) return registry;
      const refusal = registryRefusal(registry.location, policy);
      if (refusal === undefined) return registry;
      findings.push(
        makeFinding(
          "registry-not-allowed",
          registry.position,
          `registry ${JSON.stringify(registry.name)} is not used: ${refusal}`,
        ),
      );
      return { ...registry, location: undefined };
    });
    const changed = registries.some((registry, index) => registry !== manifest.registries[index]);
    return changed ? { ...manifest, registries } : manifest;
  });
  return { manifests: result, findings };
}
