import { UsageError } from "../../errors.js";
import { addToManifest, ManifestAddRefusedError } from "../../gitops/index.js";
import { booleanOption, stringListOption, stringOption, type Command } from "../command.js";
import { relativeFile } from "../format.js";
import { ExitCode, writeLine } from "../io.js";
import { createCliLogger } from "../logger.js";
import { registryOptionSpecs, storeProviderFromOptions } from "../registry-options.js";
import { registryPolicyFromOptions, registryPolicyOptionSpecs } from "../registry-policy-options.js";

/** `promoter manifest add`: add an image's digest and tags to a project's images.yaml. */
export const manifestAddCommand: Command = {
  words: ["manifest", "add"],
  summary: "Add an image digest and tags to a project's images.yaml (edits the file in place)",
  usage:
    "manifest add --thin-manifest-dir DIR --project P --image NAME (--tag T ... | --digest D) [--dry-run]\n" +
    "        [--allow-registry NAME ...]",
  description: `
Looks up the digest of each --tag in the project's staging registry (the registry marked
src: true in DIR/manifests/P/promoter-manifest.yaml), or takes --digest D (with --tag, those tags
are set on that digest, so a production tag may differ from the staging one; alone, the digest
is listed without a tag), and adds it to DIR/images/P/images.yaml: to the entry of the image that
already lists the digest, else to the image's first entry, else as a new entry (in name order
when the file is sorted). The file is edited in place: comments, blank lines, quoting and the
order of everything else stay as they are, so the diff shows only the added lines.

Refused (exit 1): the tag latest; a tag that already points at another digest in the manifests
(any project that promotes to the same destination); a tag or digest that is not in staging;
an images file or folder that is a link out of DIR, or a link to a missing file (writes stay
inside DIR).
Running the same command again changes nothing and says so (exit 0).

The staging registry is checked before any request, as promote checks it (docs/manifest-format.md,
"Registry policy"): one on this machine or a private network, or an oci: layout outside the tree,
is refused (exit 1) unless allowed with --allow-registry, and the tree's
manifests/registry-policy.yaml applies. No connection reaches an internal address except on the
hosts of --allow-registry, whatever a name resolves to.

Exit status: 0 added or already there; 1 refused; 2 invalid input or usage.`,
  options: {
    "thin-manifest-dir": { type: "string", valueName: "DIR", description: "The thin-manifest tree" },
    project: { type: "string", valueName: "P", description: "The project folder (manifests/P, images/P)" },
    image: { type: "string", valueName: "NAME", description: "The image name below the registries" },
    tag: { type: "string", multiple: true, valueName: "T", description: "A tag to add (repeatable)" },
    digest: { type: "string", valueName: "D", description: "The digest to add (sha256:...)" },
    "dry-run": { type: "boolean", description: "Show what would be added without writing" },
    ...registryPolicyOptionSpecs,
    ...registryOptionSpecs,
  },
  async run({ io, values }) {
    const thinManifestDir = stringOption(values, "thin-manifest-dir");
    const project = stringOption(values, "project");
    const image = stringOption(values, "image");
    if (!thinManifestDir) throw new UsageError("give --thin-manifest-dir DIR");
    if (!project) throw new UsageError("give --project P");
    if (!image) throw new UsageError("give --image NAME");
    const digest = stringOption(values, "digest");
    const dryRun = booleanOption(values, "dry-run");
    const logger = createCliLogger(io.stderr, { format: "text", level: "warn" });
    const registryPolicy = await registryPolicyFromOptions(values, io, { thinManifestDir });
    const provider = storeProviderFromOptions(values, io, logger);
    try {
      const result = await addToManifest({
        thinManifestDir,
        project,
        image,
        tags: stringListOption(values, "tag"),
        ...(digest === undefined ? {} : { digest }),
        provider,
        cwd: io.cwd,
        signal: io.signal,
        dryRun,
        registryPolicy,
      });
      const file = relativeFile(io.cwd, result.file);
      if (result.changes.length === 0) {
        for (const addition of result.additions) {
          const tags = addition.tags.length > 0 ? ` with ${addition.tags.join(", ")}` : "";
          writeLine(
            io.stdout,
            `${file}: already lists ${addition.image}@${addition.digest}${tags}; nothing to change`,
          );
        }
        return ExitCode.ok;
      }
      const verb = dryRun ? "would add" : "added";
      for (const change of result.changes) {
        const what = change.addedImage
          ? `new image ${change.image} with ${change.digest}`
          : change.addedDigest
            ? `${change.digest} to ${change.image}`
            : `to ${change.image}@${change.digest}`;
        const tags = change.addedTags.length > 0 ? ` tags ${change.addedTags.join(", ")}` : " (no tag)";
        writeLine(
          io.stdout,
          `${file}:${change.line}: ${verb} ${what}${change.addedDigest ? `,${tags}` : tags}`,
        );
      }
      writeLine(io.stderr, `digests looked up in ${result.source}`);
      return ExitCode.ok;
    } catch (error) {
      if (error instanceof ManifestAddRefusedError) {
        writeLine(io.stderr, `promoter manifest add: ${error.message}`);
        return ExitCode.failed;
      }
      throw error;
    } finally {
      await provider.close();
    }
  },
};
