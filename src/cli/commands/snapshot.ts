import { plural } from "../../output/quantities.js";
import * as path from "node:path";
import { UsageError } from "../../errors.js";
import { snapshotCsv, snapshotYaml, takeSnapshot } from "../../gitops/index.js";
import {
  isTag,
  OCI_LAYOUT_PREFIX,
  registryLocationProblem,
  parseRegistryLocation,
  tagProblem,
  type RegistryLocation,
  type Tag,
} from "../../reference/index.js";
import { booleanOption, integerOption, stringListOption, stringOption, type Command } from "../command.js";

import { ExitCode, writeLine } from "../io.js";
import { createCliLogger } from "../logger.js";
import { registryOptionSpecs, storeProviderFromOptions } from "../registry-options.js";
import { registryRefusal } from "../../manifest/index.js";
import { parseAllowRegistryOptions } from "../../manifest-files/index.js";
import { registryPolicyOptionSpecs } from "../registry-policy-options.js";

const OUTPUTS = ["yaml", "csv"] as const;
type Output = (typeof OUTPUTS)[number];

/** `host[:port][/path]` or `oci:DIR` (relative to the working directory) as a location. */
export function snapshotLocation(ref: string, cwd: string): RegistryLocation {
  const problem = registryLocationProblem(ref);
  if (problem) throw new UsageError(`REF ${JSON.stringify(ref)}: ${problem}`);
  const location = parseRegistryLocation(ref);
  if (location.kind === "oci-layout") {
    return { ...location, directory: path.resolve(cwd, ref.slice(OCI_LAYOUT_PREFIX.length)) };
  }
  return location;
}

/** `promoter snapshot REF`: what a registry path holds, as an images.yaml. */
export const snapshotCommand: Command = {
  words: ["snapshot"],
  summary: "Print what a registry path or OCI layout tree holds, as an images.yaml",
  usage:
    "snapshot REF [--output yaml|csv] [--tag T] [--minimal] [--repository NAME] [--allow-registry NAME ...]",
  positionals: { min: 1, max: 1, names: "REF (host[:port]/path or oci:DIR)" },
  description: `
REF is a registry path (gcr.io/k8s-staging-foo, 127.0.0.1:5000/prod) or a tree of OCI image
layouts (oci:DIR, one layout per image under DIR). The repositories under it come from the
registry's _catalog (where the registry offers it) or from --repository NAME (repeatable,
relative to REF). Every tag is listed and resolved; the output is the images.yaml that promotes
exactly that: images sorted by name, digests sorted and quoted, tags sorted in flow lists
(kpromo's format), or CSV (image,digest,tag) with --output csv.

What cannot be seen: the distribution API lists tags, not manifests, so a digest that no tag
points at is found only as a child of a tagged index (listed without tags; --minimal leaves
those children out, since promoting the index brings them). Untagged images that are not such
children are missing from the snapshot. Signature, attestation and SBOM tags
(sha256-<hex>.sig, .att, .sbom) and referrers fallback tags (sha256-<hex>) belong to images and
are left out. --tag T (repeatable) keeps only digests that carry one of those tags.

A registry on this machine or a private network is refused before any request unless allowed
with --allow-registry (as promote refuses it; docs/manifest-format.md, "Registry policy"), and no
connection reaches an internal address except on the hosts of --allow-registry, whatever a name
resolves to (a registry's redirects included). An oci:DIR named here is read wherever it is.

Exit status: 0 done; 1 the registry is refused; 2 invalid input, or a registry that cannot be
read.`,
  options: {
    output: { type: "string", valueName: "FORMAT", description: "yaml (default) or csv" },
    tag: {
      type: "string",
      multiple: true,
      valueName: "T",
      description: "Keep only digests carrying this tag (repeatable)",
    },
    minimal: { type: "boolean", description: "Leave out tagless digests that are children of an index" },
    repository: {
      type: "string",
      multiple: true,
      valueName: "NAME",
      description: "Read this repository below REF instead of listing _catalog (repeatable)",
    },
    concurrency: { type: "string", valueName: "N", description: "Repositories read at once (default 4)" },
    quiet: { type: "boolean", short: "q", description: "No summary line on stderr" },
    ...registryPolicyOptionSpecs,
    ...registryOptionSpecs,
  },
  async run({ io, values, positionals }) {
    const ref = positionals[0] ?? "";
    const location = snapshotLocation(ref, io.cwd);
    const output: Output = stringOption(values, "output", OUTPUTS) ?? "yaml";
    const tags = stringListOption(values, "tag");
    for (const tag of tags) {
      if (!isTag(tag))
        throw new UsageError(`--tag ${JSON.stringify(tag)}: ${tagProblem(tag) ?? "invalid tag"}`);
    }
    const concurrency = integerOption(values, "concurrency", 1, 64);
    const quiet = booleanOption(values, "quiet");
    if (location.kind === "remote") {
      // REF is the operator's own, like an --allow-registry entry for an oci: tree; a remote one
      // is held to the rule every command keeps: internal addresses only when allowed.
      const operatorAllowed = parseAllowRegistryOptions(stringListOption(values, "allow-registry"), io.cwd);
      const refusal = registryRefusal(location, { treeRoot: io.cwd, operatorAllowed });
      if (refusal !== undefined) {
        writeLine(io.stderr, `promoter snapshot: refused: ${ref}: ${refusal}`);
        return ExitCode.failed;
      }
    }
    const logger = createCliLogger(io.stderr, { format: "text", level: "warn" });
    const provider = storeProviderFromOptions(values, io, logger);
    try {
      const snapshot = await takeSnapshot(location, {
        provider,
        signal: io.signal,
        logger,
        repositories: stringListOption(values, "repository"),
        tags: tags as Tag[],
        minimal: booleanOption(values, "minimal"),
        ...(concurrency === undefined ? {} : { concurrency }),
      });
      io.stdout.write(output === "csv" ? snapshotCsv(snapshot.images) : snapshotYaml(snapshot.images));
      if (!quiet) {
        const digests = snapshot.images.reduce((sum, image) => sum + image.digests.length, 0);
        const left =
          snapshot.attachmentTags > 0
            ? `; ${plural(snapshot.attachmentTags, "signature/attestation/SBOM tag")} left out`
            : "";
        writeLine(
          io.stderr,
          `promoter snapshot: ${plural(snapshot.images.length, "image")}, ${plural(digests, "digest")} from ${plural(snapshot.repositories, "repository", "repositories")}${left}`,
        );
      }
      return ExitCode.ok;
    } finally {
      await provider.close();
    }
  },
};
