import { describe, expect, it } from "vitest";
import type { RegistryEntry, TagConflict } from "../manifest/index.js";
import {
  parseDigest,
  parseRegistryLocation,
  parseRepositoryPath,
  parseTag,
  repositoryIn,
  type Digest,
  type Tag,
  RepositoryKeyCache,
} from "../reference/index.js";
import {
  countDecisions,
  decidePlan,
  destinationQuestions,
  indexConflicts,
  sourceQuestions,
  type EdgeDecision,
} from "./decide.js";
import type { PromotionEdge } from "./edge.js";
import type { Inventory, RepositoryState } from "./inventory.js";

const D1 = parseDigest(`sha256:${"1".repeat(64)}`);
const D2 = parseDigest(`sha256:${"2".repeat(64)}`);
const position = { file: "images.yaml", line: 3, column: 5 };
const registry = (name: string, src = false): RegistryEntry => ({
  name,
  location: parseRegistryLocation(name),
  src,
  position,
});
const staging = registry("staging.example/s", true);
const mirrorA = registry("a.example/prod");
const mirrorB = registry("b.example/prod");
const image = parseRepositoryPath("app");
const locations = {
  source: repositoryIn(staging.location!, image),
  a: repositoryIn(mirrorA.location!, image),
  b: repositoryIn(mirrorB.location!, image),
};

function edge(digest: Digest, tag: string | undefined, to: "a" | "b"): PromotionEdge {
  return {
    project: "p",
    image,
    digest,
    ...(tag === undefined ? {} : { tag: parseTag(tag) }),
    source: locations.source,
    destination: locations[to],
    sourceRegistry: staging,
    destinationRegistry: to === "a" ? mirrorA : mirrorB,
    position,
  };
}

function observed(tags: Record<string, Digest> = {}, digests: Digest[] = []): RepositoryState {
  return {
    kind: "observed",
    tags: new Map(Object.entries(tags) as [Tag, Digest][]),
    digests: new Set([...digests, ...Object.values(tags)]),
  };
}

function inventory(
  a: RepositoryState,
  b: RepositoryState = observed(),
  source: RepositoryState = observed({}, [D1, D2]),
) {
  const destinations: Inventory = new Map([
    ["a.example/prod/app", a],
    ["b.example/prod/app", b],
  ]);
  const sources: Inventory = new Map([["staging.example/s/app", source]]);
  return { destinations, sources };
}

function decide(edges: PromotionEdge[], inv: ReturnType<typeof inventory>, conflicts: TagConflict[] = []) {
  return decidePlan(edges, inv, indexConflicts(conflicts));
}

const kinds = (decisions: readonly { readonly decision: EdgeDecision }[]) =>
  decisions.map(({ decision }) => decision.kind);

describe("decidePlan", () => {
  it.each<[string, RepositoryState, EdgeDecision["kind"]]>([
    ["tag already points at the digest", observed({ v1: D1 }), "unchanged"],
    ["digest present, tag missing", observed({}, [D1]), "add-tag"],
    ["neither present", observed(), "copy"],
    ["tag points elsewhere", observed({ v1: D2 }), "refused-tag-move"],
    [
      "destination unreadable",
      { kind: "unreadable", code: "registry-denied", message: "denied" },
      "unreadable",
    ],
  ])("%s -> %s", (_, state, kind) => {
    const plan = decide([edge(D1, "v1", "a")], inventory(state));
    expect(kinds(plan.edges)).toEqual([kind]);
  });

  it("names the digest a moved tag points at", () => {
    const plan = decide([edge(D1, "v1", "a")], inventory(observed({ v1: D2 })));
    expect(plan.edges[0]?.decision).toEqual({ kind: "refused-tag-move", current: D2 });
    expect(plan.copies).toEqual([]);
  });

  it("decides a tagless digest by presence", () => {
    expect(kinds(decide([edge(D1, undefined, "a")], inventory(observed({}, [D1]))).edges)).toEqual([
      "unchanged",
    ]);
    expect(kinds(decide([edge(D1, undefined, "a")], inventory(observed())).edges)).toEqual(["copy"]);
  });

  it("reports a digest missing in the source, and an unreadable source, per edge", () => {
    const missing = decide([edge(D1, "v1", "a")], inventory(observed(), observed(), observed({}, [D2])));
    expect(kinds(missing.edges)).toEqual(["missing-source"]);
    const unreadable = decide(
      [edge(D1, "v1", "a")],
      inventory(observed(), observed(), { kind: "unreadable", code: "registry-network", message: "reset" }),
    );
    expect(unreadable.edges[0]?.decision).toMatchObject({
      kind: "unreadable",
      side: "source",
      code: "registry-network",
    });
  });

  it("refuses both claims of a conflicting tag and nothing else", () => {
    const conflict: TagConflict = {
      destination: "a.example/prod/app",
      image,
      tag: parseTag("v1"),
      claims: [
        { digest: D1, position, project: "p" },
        { digest: D2, position, project: "q" },
      ],
    } as unknown as TagConflict;
    const plan = decide(
      [edge(D1, "v1", "a"), edge(D2, "v1", "a"), edge(D1, "v1", "b"), edge(D1, "v2", "a")],
      inventory(observed()),
      [conflict],
    );
    expect(kinds(plan.edges)).toEqual(["refused-conflict", "refused-conflict", "copy", "copy"]);
  });

  it("groups work by source digest, one destination entry with all its tags", () => {
    const plan = decide(
      [
        edge(D1, "v1", "a"),
        edge(D1, "v1.0", "a"),
        edge(D1, "v1", "b"),
        edge(D1, undefined, "b"),
        edge(D2, "v2", "a"),
      ],
      inventory(observed(), observed({}, [D1])),
    );
    expect(plan.copies).toHaveLength(2);
    const first = plan.copies.find((copy) => copy.digest === D1)!;
    expect(first.sourceKey).toBe("staging.example/s/app");
    expect(
      first.destinations.map((d) => ({ key: d.key, tags: d.tags, needsContent: d.needsContent })),
    ).toEqual([
      { key: "a.example/prod/app", tags: ["v1", "v1.0"], needsContent: true },
      { key: "b.example/prod/app", tags: ["v1"], needsContent: false },
    ]);
    expect(countDecisions(plan.edges)).toMatchObject({ copy: 3, "add-tag": 1, unchanged: 1 });
  });

  it("tells the copy which destination repositories the inventory saw empty", () => {
    const empty: RepositoryState = { kind: "observed", tags: new Map(), digests: new Set(), empty: true };
    const plan = decide([edge(D1, "v1", "a"), edge(D1, "v1", "b")], inventory(empty, observed()));
    expect(plan.copies[0]?.destinations.map((d) => [d.key, d.repositoryEmpty])).toEqual([
      ["a.example/prod/app", true],
      ["b.example/prod/app", false],
    ]);
  });

  it("refuses copies and added tags of a source that fails its signature policy", () => {
    const plan = decidePlan(
      [edge(D1, "v1", "a"), edge(D2, "v2", "a")],
      inventory(observed()),
      indexConflicts([]),
      new RepositoryKeyCache(),
      new Map([[`staging.example/s/app@${D1}`, "no valid signature"]]),
    );
    expect(kinds(plan.edges)).toEqual(["refused-source-signature", "copy"]);
    expect(plan.copies.map((copy) => copy.digest)).toEqual([D2]);
  });
});

describe("questions", () => {
  it("asks each destination for the tags and digests its edges name", () => {
    const { destinations } = destinationQuestions([
      edge(D1, "v1", "a"),
      edge(D2, undefined, "a"),
      edge(D1, "v1", "b"),
    ]);
    expect([...destinations.keys()]).toEqual(["a.example/prod/app", "b.example/prod/app"]);
    const a = destinations.get("a.example/prod/app")!.question;
    expect([...a.tags]).toEqual(["v1"]);
    expect([...a.digests].sort()).toEqual([D1, D2]);
  });

  it("asks the source only for digests some destination must copy", () => {
    const edges = [edge(D1, "v1", "a"), edge(D2, "v2", "a")];
    const { destinations } = inventory(observed({ v1: D1 }));
    const sources = sourceQuestions(edges, destinations, indexConflicts([]));
    expect([...(sources.get("staging.example/s/app")?.question.digests ?? [])]).toEqual([D2]);
    const allDone = sourceQuestions(
      edges,
      inventory(observed({ v1: D1, v2: D2 })).destinations,
      indexConflicts([]),
    );
    expect(allDone.size).toBe(0);
  });
});
