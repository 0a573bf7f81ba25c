import { plural } from "../output/quantities.js";
import {
  DOCKER_HUB,
  formatRepositoryLocation,
  isDockerHubName,
  repositoryIn,
  type RegistryLocation,
} from "../reference/index.js";
import { makeFinding } from "./finding.js";
import type { Finding, PromotionManifest, SourcePosition } from "./model.js";
import { destinationRegistries, sourceRegistry, type UsableRegistry } from "./view.js";

/**
 * Who owns a destination repository (docs/manifest-format.md, "Repository ownership"). Images
 * files are owned by their project (images/<project>/OWNERS), registries files by the promotion
 * admins; several projects may share a destination prefix (in registry.k8s.io, etcd and
 * kubernetes both promote to `.../k8s-artifacts-prod/images`). Without a rule, a change that
 * only touches one project's images file, and is approved by that project's owners alone, could
 * publish into another project's repository.
 *
 * The owner is derived from the registries files, which the admins review:
 *
 * 1. A destination repository (`<destination>/<image>`) belongs to the project(s) whose
 *    destination is the longest prefix of it (path components; a prefix as long as the
 *    repository counts). An image of another project that lands there is `foreign-repository`.
 * 2. When several projects share that longest destination, the repository belongs to the one
 *    project that lists the image. Listed by two or more, it is `disputed-repository` for each
 *    of them: it has no single owner, so none of them is promoted there until one entry goes.
 *
 * An image entry with either finding is left out of its manifest as a whole (every destination),
 * like an entry with an invalid digest. A manifest without exactly one usable source promotes
 * nothing and claims nothing, but its destinations still own their prefixes. Pure: manifests in,
 * manifests and findings out.
 */

/**
 * The path components of a registry location, host first, equal for equal places. An `oci:`
 * directory counts where it really is (`realDirectory`): a tree can reach one folder by two
 * names, through a symbolic link, and the folder has one owner whatever it is called.
 */
function locationComponents(
  location: RegistryLocation,
  realDirectory: (directory: string) => string,
): string[] {
  if (location.kind === "oci-layout") {
    const directory = realDirectory(location.directory);
    return ["oci:", ...directory.split("/").filter((component) => component.length > 0)];
  }
  let host: string = location.host;
  if (host.endsWith(":443")) host = host.slice(0, -":443".length);
  if (isDockerHubName(host)) host = DOCKER_HUB;
  return [host, ...(location.prefix === "" ? [] : location.prefix.split("/"))];
}

const KEY_SEPARATOR = "\n";

interface PrefixOwner {
  readonly project: string;
  readonly registry: UsableRegistry;
}

interface Claim {
  readonly manifest: PromotionManifest;
  readonly image: string;
  readonly position: SourcePosition;
  readonly repository: string;
}

interface Verdict {
  readonly kind: "foreign-repository" | "disputed-repository";
  readonly repositories: string[];
  readonly message: (more: string) => string;
  readonly related: SourcePosition[];
}

function quoteList(names: readonly string[]): string {
  const quoted = names.map((name) => JSON.stringify(name));
  return quoted.length <= 1
    ? (quoted[0] ?? "")
    : `${quoted.slice(0, -1).join(", ")} and ${quoted.at(-1) ?? ""}`;
}

export interface OwnershipOptions {
  /**
   * Where a directory really is, symbolic links resolved (the loader's I/O, as for the registry
   * policy); default: as written, which two names of one folder get past.
   */
  readonly realDirectory?: (directory: string) => string;
}

/**
 * The manifests without the image entries that name another project's repository (or one that
 * several projects sharing a prefix list), and one finding per such image and project.
 */
export function applyRepositoryOwnership(
  manifests: readonly PromotionManifest[],
  options: OwnershipOptions = {},
): {
  manifests: PromotionManifest[];
  findings: Finding[];
} {
  const realDirectory = options.realDirectory ?? ((directory: string) => directory);
  const prefixes = new Map<string, PrefixOwner[]>();
  const destinationsOf = new Map<PromotionManifest, { registry: UsableRegistry; components: string[] }[]>();
  for (const manifest of manifests) {
    const destinations = destinationRegistries(manifest).map((registry) => ({
      registry,
      components: locationComponents(registry.location, realDirectory),
    }));
    destinationsOf.set(manifest, destinations);
    for (const { registry, components } of destinations) {
      const key = components.join(KEY_SEPARATOR);
      const owners = prefixes.get(key);
      if (!owners) prefixes.set(key, [{ project: manifest.project, registry }]);
      else if (!owners.some((owner) => owner.project === manifest.project)) {
        owners.push({ project: manifest.project, registry });
      }
    }
  }

  const verdicts = new Map<PromotionManifest, Map<string, Verdict>>();
  const verdictFor = (manifest: PromotionManifest, image: string, make: () => Verdict): Verdict => {
    let byImage = verdicts.get(manifest);
    if (!byImage) verdicts.set(manifest, (byImage = new Map<string, Verdict>()));
    let verdict = byImage.get(image);
    if (!verdict) byImage.set(image, (verdict = make()));
    return verdict;
  };
  const claims = new Map<string, Claim[]>();

  for (const manifest of manifests) {
    const destinations = destinationsOf.get(manifest) ?? [];
    // A manifest without exactly one usable source promotes nothing (its findings say why), so
    // its images claim nothing; its destinations still own their prefixes.
    if (destinations.length === 0 || !sourceRegistry(manifest)) continue;
    const seen = new Set<string>();
    for (const entry of manifest.images) {
      if (seen.has(entry.name)) continue;
      seen.add(entry.name);
      for (const { registry, components } of destinations) {
        const repositoryComponents = [...components, ...entry.name.split("/")];
        const repository = formatRepositoryLocation(repositoryIn(registry.location, entry.name));
        let owners: PrefixOwner[] = [];
        for (let length = repositoryComponents.length; length > 0 && owners.length === 0; length--) {
          owners = prefixes.get(repositoryComponents.slice(0, length).join(KEY_SEPARATOR)) ?? [];
        }
        if (owners.some((owner) => owner.project === manifest.project)) {
          const key = repositoryComponents.join(KEY_SEPARATOR);
          const list = claims.get(key);
          const claim = { manifest, image: entry.name, position: entry.position, repository };
          if (!list) claims.set(key, [claim]);
          else if (!list.some((other) => other.manifest === manifest)) list.push(claim);
          continue;
        }
        const [owner] = owners;
        const verdict = verdictFor(manifest, entry.name, () => ({
          kind: "foreign-repository",
          repositories: [],
          related: owners.map((other) => other.registry.position),
          message: (more) =>
            `image ${JSON.stringify(entry.name)} would be published to ${repository}${more}, which belongs to project ${quoteList(owners.map((other) => other.project))}: its destination ${owner?.registry.name ?? ""} is more specific than this project's ${registry.name}; an images file may name only its own project's repositories`,
        }));
        verdict.repositories.push(repository);
      }
    }
  }

  for (const list of claims.values()) {
    if (list.length < 2) continue;
    const projects = list.map((claim) => claim.manifest.project);
    for (const claim of list) {
      const verdict = verdictFor(claim.manifest, claim.image, () => ({
        kind: "disputed-repository",
        repositories: [],
        related: list.filter((other) => other !== claim).map((other) => other.position),
        message: (more) =>
          `image ${JSON.stringify(claim.image)} would be published to ${claim.repository}${more}, which projects ${quoteList(projects)} each list under a destination they share: a repository belongs to one project, so no project is promoted there until only one lists it`,
      }));
      verdict.repositories.push(claim.repository);
    }
  }

  const findings: Finding[] = [];
  const result = manifests.map((manifest) => {
    const byImage = verdicts.get(manifest);
    if (!byImage) return manifest;
    for (const [image, verdict] of byImage) {
      const first = manifest.images.find((entry) => entry.name === image);
      if (!first) continue;
      const others = verdict.repositories.length - 1;
      const more = others > 0 ? ` (and ${plural(others, "more destination")})` : "";
      findings.push(
        makeFinding(verdict.kind, first.position, verdict.message(more), { related: verdict.related }),
      );
    }
    return { ...manifest, images: manifest.images.filter((entry) => !byImage.has(entry.name)) };
  });
  return { manifests: result, findings };
}
