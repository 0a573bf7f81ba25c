import { describe, expect, it } from "vitest";
import { defaultBranchName, parseReviewers } from "./pull-request.js";

const upstream = { owner: "kubernetes", name: "k8s.io" };

describe("parseReviewers", () => {
  it("takes logins and ORG/TEAM, with or without @, comma-separated or repeated", () => {
    expect(parseReviewers(["alice, @bob", "@kubernetes/release-engineering", "alice"], upstream)).toEqual({
      users: ["alice", "bob"],
      teams: ["release-engineering"],
    });
  });

  it("refuses a team of another organisation and names that are not GitHub's", () => {
    expect(() => parseReviewers(["other/team"], upstream)).toThrow(/a team of kubernetes/);
    expect(() => parseReviewers(["a/b/c"], upstream)).toThrow(/GitHub login or ORG\/TEAM/);
    expect(() => parseReviewers(["bad name"], upstream)).toThrow(/GitHub login or ORG\/TEAM/);
  });
});

describe("defaultBranchName", () => {
  it("is kpromo's <project>-<tag>-image-promotion with the image, in characters a branch may hold", () => {
    expect(defaultBranchName("demo", "app", ["v1.0.0"])).toBe("demo-app-v1.0.0-image-promotion");
    expect(defaultBranchName("demo", "tools/app", ["v1"])).toBe("demo-tools-app-v1-image-promotion");
    expect(defaultBranchName("demo", "app", [], `sha256:${"ab".repeat(32)}`)).toBe(
      "demo-app-abababababab-image-promotion",
    );
  });
});
