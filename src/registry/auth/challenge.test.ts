import { describe, expect, it } from "vitest";
import { parseChallenges, preferredChallenge } from "./challenge.js";
import { mergeScopes, pullScope, pushScope } from "./scope.js";

describe("parseChallenges", () => {
  it("reads a Docker token challenge", () => {
    expect(
      parseChallenges([
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"',
      ]),
    ).toEqual([
      {
        scheme: "bearer",
        params: {
          realm: "https://auth.docker.io/token",
          service: "registry.docker.io",
          scope: "repository:library/ubuntu:pull",
        },
      },
    ]);
  });

  it("reads several challenges, quoted commas, escapes and unquoted values", () => {
    const challenges = parseChallenges([
      'Basic realm="Registry, Inc", Bearer realm="https://a/t",error="insufficient_scope",scope="repository:a:pull,push"',
      'Custom x=1, y="a \\"q\\""',
    ]);
    expect(challenges.map((challenge) => challenge.scheme)).toEqual(["basic", "bearer", "custom"]);
    expect(challenges[0]?.params.realm).toBe("Registry, Inc");
    expect(challenges[1]?.params.scope).toBe("repository:a:pull,push");
    expect(challenges[2]?.params).toEqual({ x: "1", y: 'a "q"' });
  });

  it("prefers Bearer with a realm over Basic and ignores others", () => {
    expect(preferredChallenge(parseChallenges(['Basic realm="r"', 'Bearer realm="https://a"']))?.scheme).toBe(
      "bearer",
    );
    expect(
      preferredChallenge(parseChallenges(['Bearer service="no-realm"', 'Basic realm="r"']))?.scheme,
    ).toBe("basic");
    expect(preferredChallenge(parseChallenges(["Negotiate"]))).toBeUndefined();
  });
});

describe("scopes", () => {
  it("merges actions per resource and sorts", () => {
    expect(
      mergeScopes([
        pushScope("b"),
        pullScope("a"),
        "repository:b:pull",
        "repository:a:push",
        "registry:catalog:*",
      ]),
    ).toEqual(["registry:catalog:*", "repository:a:pull,push", "repository:b:pull,push"]);
  });
});
