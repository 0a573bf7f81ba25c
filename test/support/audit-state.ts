import { buildDesiredState, type DesiredState } from "../../src/audit/desired-state.js";
import { createManifestSet, parsePlainManifest } from "../../src/manifest/index.js";

export interface AppDesiredStateOptions {
  /** The registry host of every registry of the manifest (default reg.example). */
  readonly host?: string;
  /** More destination repositories after `<host>/prod`, as `<host>/<name>`. */
  readonly mirrors?: readonly string[];
}

/**
 * The desired state of one plain manifest, m.yaml, that promotes image `app` from `<host>/staging`
 * to `<host>/prod` (and any `mirrors`) with `dmap`: each digest and its tags, in order.
 */
export function appDesiredState(
  dmap: Readonly<Record<string, readonly string[]>>,
  options: AppDesiredStateOptions = {},
): DesiredState {
  const host = options.host ?? "reg.example";
  const mirrors = (options.mirrors ?? []).map((mirror) => `  - name: ${host}/${mirror}\n`).join("");
  const digests = Object.entries(dmap)
    .map(([digest, tags]) => `      "${digest}": [${tags.map((tag) => JSON.stringify(tag)).join(", ")}]\n`)
    .join("");
  const parsed = parsePlainManifest({
    file: "m.yaml",
    text: `
registries:
  - name: ${host}/staging
    src: true
  - name: ${host}/prod
${mirrors}images:
  - name: app
    dmap:
${digests}`,
  });
  if (!parsed.manifest) throw new Error(`m.yaml does not parse: ${JSON.stringify(parsed.findings)}`);
  return buildDesiredState(createManifestSet([parsed.manifest]));
}
