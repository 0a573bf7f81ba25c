import { edgesChangedSince } from "../../gitops/index.js";
import { FINDINGS_FAIL_ON, validate, type FindingsFailOn } from "../../manifest/index.js";
import { loadManifests } from "../../manifest-files/index.js";
import { promotionEdges } from "../../plan/index.js";
import { plural } from "../../output/quantities.js";
import { stringOption, type ParsedValues } from "../command.js";
import { ExitCode, writeLine, type CliIO } from "../io.js";
import { manifestInputFromOptions } from "../manifest-options.js";
import { registryPolicyFromOptions } from "../registry-policy-options.js";
import { judgedValidation, writeValidation } from "../commands/validate.js";
import type { CipScope } from "./change-scope.js";

/**
 * `cip --parse-only`: read and validate the manifests, count the edges in scope, stop. kpromo
 * also asks the registries which edges are still to do; here no registry is asked (that is the
 * dry run without --parse-only), so a pull request's check needs no credentials.
 */
export async function runCipParseOnly(io: CliIO, values: ParsedValues, scope: CipScope): Promise<number> {
  const input = manifestInputFromOptions(values);
  const failOn: FindingsFailOn = stringOption(values, "fail-on-findings", FINDINGS_FAIL_ON) ?? "new";
  const base = scope.kind === "change" ? scope.base : undefined;
  const registryPolicy = await registryPolicyFromOptions(values, io, input, base);
  const set = await loadManifests(input, { signal: io.signal, cwd: io.cwd, registryPolicy });
  const changed =
    base === undefined ? undefined : await edgesChangedSince(input, base, { cwd: io.cwd, signal: io.signal });
  const baseFindings = scope.kind === "everything-new" ? [] : changed?.baseFindings;
  const result = judgedValidation(validate(set), baseFindings, failOn);
  writeValidation(io, result, "text");
  let inScope = 0;
  for (const edge of promotionEdges(set)) if (!changed || changed.filter(edge)) inScope += 1;
  writeLine(
    io.stderr,
    `promoter cip: manifests parsed (--parse-only): ${plural(inScope, "promotion edge")} in scope; no registry was asked`,
  );
  return result.ok ? ExitCode.ok : ExitCode.failed;
}
