import { UsageError } from "../errors.js";
import type { ManifestInput } from "../manifest-files/index.js";
import { stringOption, type OptionSpecs, type ParsedValues } from "./command.js";

/** `--manifest FILE | --thin-manifest-dir DIR`, shared by every command that reads manifests. */
export const manifestOptionSpecs = {
  manifest: { type: "string", valueName: "FILE", description: "A plain promotion manifest file" },
  "thin-manifest-dir": {
    type: "string",
    valueName: "DIR",
    description:
      "A thin-manifest tree (manifests/<project>/promoter-manifest.yaml + images/<project>/images.yaml)",
  },
} as const satisfies OptionSpecs;

/** The manifest input named by the flags; exactly one of the two is required unless `optional`. */
export function manifestInputFromOptions(values: ParsedValues): ManifestInput;
export function manifestInputFromOptions(values: ParsedValues, optional: true): ManifestInput | undefined;
export function manifestInputFromOptions(values: ParsedValues, optional = false): ManifestInput | undefined {
  const manifest = stringOption(values, "manifest");
  const thinManifestDir = stringOption(values, "thin-manifest-dir");
  if (manifest !== undefined && thinManifestDir !== undefined) {
    throw new UsageError("give either --manifest or --thin-manifest-dir, not both");
  }
  if (manifest === "" || thinManifestDir === "") throw new UsageError("the path must not be empty");
  if (manifest !== undefined) return { manifest };
  if (thinManifestDir !== undefined) return { thinManifestDir };
  if (optional) return undefined;
  throw new UsageError("give --manifest FILE or --thin-manifest-dir DIR");
}
