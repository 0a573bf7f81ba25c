import { describe, expect, it } from "vitest";
import { splitGitCredentials } from "./git-checkout.js";

describe("splitGitCredentials", () => {
  it("moves the user part of an http(s) URL into a Basic Authorization value", () => {
    const split = splitGitCredentials("https://bot:p%40ss%3Aword@git.example/org/manifests.git");
    expect(split.url).toBe("https://git.example/org/manifests.git");
    expect(Buffer.from(split.authorization?.replace(/^Basic /, "") ?? "", "base64").toString()).toBe(
      "bot:p@ss:word",
    );
    const tokenOnly = splitGitCredentials("http://TOKEN@127.0.0.1:8080/r.git");
    expect(tokenOnly.url).toBe("http://127.0.0.1:8080/r.git");
    expect(tokenOnly.authorization).toBe(`Basic ${Buffer.from("TOKEN:").toString("base64")}`);
  });

  it("leaves URLs without credentials, and other transports, as they are", () => {
    for (const url of [
      "https://git.example/org/manifests.git",
      "ssh://git@git.example/org/manifests.git",
      "git@git.example:org/manifests.git",
      "file:///srv/manifests",
    ]) {
      expect(splitGitCredentials(url)).toEqual({ url });
    }
  });
});
