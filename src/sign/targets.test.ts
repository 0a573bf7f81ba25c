import { describe, expect, it } from "vitest";
import type { ManifestSet, RegistryEntry } from "../manifest/index.js";
import type { PlannedEdge, PromotionEdge } from "../plan/index.js";
import { parseDigest, parseRegistryLocation, parseRepositoryPath, repositoryIn } from "../reference/index.js";
import { canonicalRegistries, signatureTargets } from "./targets.js";

const position = { file: "m.yaml", line: 1, column: 1 };
const entry = (name: string, src = false): RegistryEntry => ({
  name,
  location: parseRegistryLocation(name),
  src,
  position,
});
const staging = entry("staging.example/s", true);
const first = entry("registry.example/prod");
const second = entry("mirror.example/prod");
const image = parseRepositoryPath("app");
const digest = parseDigest(`sha256:${"a".repeat(64)}`);

function planned(to: RegistryEntry): PlannedEdge {
  const edge: PromotionEdge = {
    project: "p",
    image,
    digest,
    source: repositoryIn(staging.location!, image),
    destination: repositoryIn(to.location!, image),
    sourceRegistry: staging,
    destinationRegistry: to,
    position,
  };
  return { edge, decision: { kind: "copy" } };
}

const set: ManifestSet = {
  manifests: [{ project: "p", file: "m.yaml", registries: [staging, first, second], images: [] }],
  findings: [],
};

describe("signatureTargets identities", () => {
  it("names the manifest's first destination even when only another mirror is planned", () => {
    // --changed-since or --shard can leave only the second mirror in the plan.
    const targets = signatureTargets([planned(second)], { canonicalRegistries: canonicalRegistries(set) });
    expect(targets.map((target) => target.identities)).toEqual([["registry.example/prod/app"]]);
  });

  it("falls back to the first planned destination without the manifests, and obeys --sign-identity", () => {
    expect(signatureTargets([planned(second)]).map((target) => target.identities)).toEqual([
      ["mirror.example/prod/app"],
    ]);
    const configured = signatureTargets([planned(second)], { identity: "vanity.example/project" });
    expect(configured.map((target) => target.identities)).toEqual([["vanity.example/project/app"]]);
  });
});

describe("signatureTargets elsewhere", () => {
  const third = entry("asia.example/prod");
  const declared = [first, second, third].map((to) => planned(to).edge);

  it("lists the digest's declared destinations that the run does not plan", () => {
    // --changed-since after a new mirror: only the edge to it is planned.
    const [target] = signatureTargets([planned(third)], { declared });
    expect(target?.destinations.map((destination) => destination.key)).toEqual(["asia.example/prod/app"]);
    expect(target?.elsewhere?.map((destination) => destination.key)).toEqual([
      "mirror.example/prod/app",
      "registry.example/prod/app",
    ]);
  });

  it("includes planned destinations the digest is not promoted to in this run", () => {
    const refused: PlannedEdge = {
      ...planned(second),
      decision: { kind: "missing-source" },
    };
    const [target] = signatureTargets([planned(first), refused, planned(third)], { declared });
    expect(target?.elsewhere?.map((destination) => destination.key)).toEqual(["mirror.example/prod/app"]);
  });

  it("has none when every declared destination is planned, or nothing is declared", () => {
    const all = [first, second, third].map(planned);
    expect(signatureTargets(all, { declared })[0]).not.toHaveProperty("elsewhere");
    expect(signatureTargets([planned(third)])[0]).not.toHaveProperty("elsewhere");
  });
});
