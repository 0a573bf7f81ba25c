import { plural } from "../../output/quantities.js";
import { existsSync } from "node:fs";
import { stat } from "node:fs/promises";
import * as path from "node:path";
import { UsageError } from "../../errors.js";
import {
  SNAPSHOT_OUTPUTS,
  kpromoSnapshotStdout,
  snapshotText,
  takeManifestBasedSnapshot,
  SnapshotError,
  takeSnapshot,
  type SnapshotOutput,
} from "../../gitops/index.js";
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
import { registryRefusal, validate } from "../../manifest/index.js";
import { loadManifests, parseAllowRegistryOptions } from "../../manifest-files/index.js";
import { registryPolicyFromOptions, registryPolicyOptionSpecs } from "../registry-policy-options.js";
import { manifestInputFromOptions, manifestOptionSpecs } from "../manifest-options.js";
import { findingText } from "../format.js";
import type { CliIO } from "../io.js";
import type { ParsedValues } from "../command.js";

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

/** Refuses a remote REF on an internal address unless allowed; the message, or undefined. */
function refusalOf(location: RegistryLocation, values: ParsedValues, io: CliIO): string | undefined {
  if (location.kind !== "remote") return undefined;
  // REF is the operator's own, like an --allow-registry entry for an oci: tree; a remote one
  // is held to the rule every command keeps: internal addresses only when allowed.
  const operatorAllowed = parseAllowRegistryOptions(stringListOption(values, "allow-registry"), io.cwd);
  return registryRefusal(location, { treeRoot: io.cwd, operatorAllowed });
}

/** `promoter snapshot REF`: what a registry path holds (or would hold, by the manifests), as an images.yaml. */
export const snapshotCommand: Command = {
  words: ["snapshot"],
  summary: "Print what a registry path or OCI layout tree holds, as an images.yaml",
  usage:
    "snapshot REF [--from-manifests (--manifest FILE | --thin-manifest-dir DIR)] [--output yaml|csv] [--tag T] [--minimal] [--repository NAME] [--allow-registry NAME ...]",
  positionals: { min: 1, max: 1, names: "REF (host[:port]/path or oci:DIR)" },
  description: `
REF is a registry path (gcr.io/k8s-staging-foo, 127.0.0.1:5000/prod) or a tree of OCI image
layouts (oci:DIR, one layout per image under DIR). The repositories under it come from the
registry's _catalog (where the registry offers it) or from --repository NAME (repeatable,
relative to REF). Every tag is listed and resolved; the output is the images.yaml that promotes
exactly that, in kpromo's format (as kpromo cip --snapshot prints it, without its final empty
line): images sorted by name, digests sorted and quoted, tags sorted in flow lists. --output csv prints
kpromo's CSV: no header, one line per tag, NAME@DIGEST,NAME:TAG, and NAME@DIGEST,- for a digest
without tags. An empty snapshot is [] in YAML, nothing in CSV.

What cannot be seen: the distribution API lists tags, not manifests, so a digest that no tag
points at is found only as a child of a tagged index (listed without tags; --minimal leaves
those children out, since promoting the index brings them). Untagged images that are not such
children are missing from a registry's snapshot; an oci: layout lists them (index.json entries
whose name is absent or no tag), and they are shown without tags. Signature, attestation and SBOM tags
(sha256-<hex>.sig, .att, .sbom) and referrers fallback tags (sha256-<hex>) belong to images and
are left out. --tag T (repeatable) keeps only the digests that carry one of those tags, each with
all its tags (kpromo's --snapshot-tag).

--from-manifests (kpromo's --manifest-based-snapshot-of): what the manifests (--manifest FILE or
--thin-manifest-dir DIR) would promote into REF, as a snapshot of REF would show it once
promoted, read from the manifests alone: every destination at or below REF, with image names
relative to REF (a destination REF/sub gives sub/NAME). --repository NAME keeps only those
images; --tag filters as above. Only --minimal reads REF: tagless digests that REF already holds
as children of an index of the same image are left out. What promote would not write is left
out as promote leaves it: entries with errors (listed on stderr; exit status 1) and tags that
manifests claim for different digests.

A registry on this machine or a private network is refused before any request unless allowed
with --allow-registry (as promote refuses it; docs/manifest-format.md, "Registry policy"), and no
connection reaches an internal address except on the hosts of --allow-registry, whatever a name
resolves to (a registry's redirects included). An oci:DIR named here is read wherever it is.

Exit status: 0 done; 1 the registry is refused, or the manifests have errors; 2 invalid input,
a registry that cannot be read, or what was asked for is not there (a path no repository is
under, a --repository without tags, a --tag no repository has, a missing oci: directory; an
oci:DIR that is itself one layout is refused with the form oci:PARENT --repository NAME).`,
  options: {
    output: {
      type: "string",
      valueName: "FORMAT",
      description: "yaml (default) or csv, as kpromo prints them",
    },
    tag: {
      type: "string",
      multiple: true,
      valueName: "T",
      description: "Keep only digests carrying this tag, with all their tags (repeatable)",
    },
    minimal: { type: "boolean", description: "Leave out tagless digests that are children of an index" },
    repository: {
      type: "string",
      multiple: true,
      valueName: "NAME",
      description:
        "Read this repository below REF instead of listing _catalog; with --from-manifests, keep only this image (repeatable)",
    },
    "from-manifests": {
      type: "boolean",
      description: "What the manifests would promote into REF, instead of what REF holds",
    },
    ...manifestOptionSpecs,
    concurrency: { type: "string", valueName: "N", description: "Repositories read at once (default 4)" },
    quiet: { type: "boolean", short: "q", description: "No summary line on stderr" },
    ...registryPolicyOptionSpecs,
    ...registryOptionSpecs,
  },
  run: ({ io, values, positionals }) => runSnapshot(io, values, positionals[0] ?? "", "promoter"),
};

/**
 * An `oci:` snapshot reads a tree of layouts, one repository per folder holding `oci-layout`. A
 * missing directory is named rather than read as an empty tree, and a single layout (skopeo's
 * `oci:DIR/web`) gets the form that reads it.
 */
async function checkLayoutTree(directory: string, ref: string): Promise<void> {
  try {
    if (!(await stat(directory)).isDirectory())
      throw new UsageError(`${ref}: ${directory} is not a directory`);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new SnapshotError("snapshot-not-found", `${ref}: no directory ${directory}`);
  }
  if (existsSync(path.join(directory, "oci-layout"))) {
    const parent = path.dirname(ref.slice(ref.indexOf(":") + 1)) || ".";
    throw new UsageError(
      `${ref} is a single OCI layout; a snapshot reads a tree of layouts, one repository per folder: use oci:${parent} --repository ${path.basename(directory)}`,
    );
  }
}

/** Our text, or kpromo's stdout byte for byte (`fmt.Println` of its text: one more newline). */
function writeSnapshot(
  io: CliIO,
  images: Parameters<typeof snapshotText>[0],
  output: SnapshotOutput,
  style: "promoter" | "kpromo",
): void {
  io.stdout.write(style === "kpromo" ? kpromoSnapshotStdout(images, output) : snapshotText(images, output));
}

/**
 * A snapshot from parsed flags. `kpromo` style (`cip --snapshot`, `--manifest-based-snapshot-of`)
 * prints kpromo's stdout byte for byte (its final empty line included) and lists signature,
 * attestation and SBOM tags, as kpromo's snapshot does.
 */
export async function runSnapshot(
  io: CliIO,
  values: ParsedValues,
  ref: string,
  style: "promoter" | "kpromo",
): Promise<number> {
  const location = snapshotLocation(ref, io.cwd);
  const output: SnapshotOutput = stringOption(values, "output", SNAPSHOT_OUTPUTS) ?? "yaml";
  const tags = stringListOption(values, "tag");
  for (const tag of tags) {
    if (!isTag(tag))
      throw new UsageError(`--tag ${JSON.stringify(tag)}: ${tagProblem(tag) ?? "invalid tag"}`);
  }
  const concurrency = integerOption(values, "concurrency", 1, 64);
  const quiet = booleanOption(values, "quiet");
  const minimal = booleanOption(values, "minimal");
  const repositories = stringListOption(values, "repository");
  const fromManifests = booleanOption(values, "from-manifests");
  const input = manifestInputFromOptions(values, true);
  if (!fromManifests && input !== undefined) {
    throw new UsageError("--manifest and --thin-manifest-dir need --from-manifests (a snapshot reads REF)");
  }
  if (fromManifests && input === undefined) {
    throw new UsageError("--from-manifests needs --manifest FILE or --thin-manifest-dir DIR");
  }
  // Only a read of REF needs the policy's consent; a manifest-based snapshot without --minimal
  // contacts nothing.
  if (!fromManifests || minimal) {
    const refusal = refusalOf(location, values, io);
    if (refusal !== undefined) {
      writeLine(io.stderr, `promoter snapshot: refused: ${ref}: ${refusal}`);
      return ExitCode.failed;
    }
  }
  const logger = createCliLogger(io.stderr, { format: "text", level: quiet ? "warn" : "info" });

  if (input !== undefined) {
    const registryPolicy = await registryPolicyFromOptions(values, io, input);
    const set = await loadManifests(input, { signal: io.signal, cwd: io.cwd, registryPolicy });
    // As promote plans: entries with errors are left out, the rest is shown, and the exit
    // status says the manifests are not clean.
    const errors = validate(set).findings.filter((finding) => finding.severity === "error");
    for (const finding of errors) writeLine(io.stderr, findingText(io.cwd, finding));
    if (errors.length > 0) {
      writeLine(
        io.stderr,
        `promoter snapshot: ${plural(errors.length, "manifest error")}: those entries are left out; everything else is shown`,
      );
    }
    const provider = minimal ? storeProviderFromOptions(values, io, logger) : undefined;
    try {
      const snapshot = await takeManifestBasedSnapshot(set, location, {
        signal: io.signal,
        repositories,
        tags: tags as Tag[],
        minimal,
        ...(provider === undefined ? {} : { provider }),
        ...(concurrency === undefined ? {} : { concurrency }),
      });
      writeSnapshot(io, snapshot.images, output, style);
      if (!quiet) {
        const digests = snapshot.images.reduce((sum, image) => sum + image.digests.length, 0);
        const read = minimal
          ? `; ${plural(snapshot.repositoriesRead, "repository", "repositories")} read for --minimal`
          : "";
        writeLine(
          io.stderr,
          `promoter snapshot: ${plural(snapshot.images.length, "image")}, ${plural(digests, "digest")} the manifests promote into ${ref}${read}`,
        );
      }
      // kpromo never validated manifests: its snapshot does not fail on an old broken entry.
      return errors.length > 0 && style !== "kpromo" ? ExitCode.failed : ExitCode.ok;
    } finally {
      await provider?.close();
    }
  }

  if (location.kind === "oci-layout") await checkLayoutTree(location.directory, ref);
  const provider = storeProviderFromOptions(values, io, logger);
  try {
    const snapshot = await takeSnapshot(location, {
      provider,
      signal: io.signal,
      logger,
      repositories,
      tags: tags as Tag[],
      minimal,
      keepAttachmentTags: style === "kpromo",
      ...(concurrency === undefined ? {} : { concurrency }),
    });
    writeSnapshot(io, snapshot.images, output, style);
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
}
