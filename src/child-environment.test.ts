import { describe, expect, it } from "vitest";
import { NETWORK_VARIABLES, pickEnvironment } from "./child-environment.js";
import { gitEnvironment } from "./git/process.js";
import { credentialHelperEnvironment } from "./registry/credentials/helper.js";

describe("child environments", () => {
  it("picks only the set variables the filter accepts", () => {
    expect(pickEnvironment({ A: "1", B: undefined, C: "3" }, (name) => name !== "C")).toEqual({ A: "1" });
  });

  it("give git's network commands and credential helpers the same proxies and CA bundles", () => {
    const parent = Object.fromEntries(NETWORK_VARIABLES.map((name) => [name, `value of ${name}`]));
    const git = gitEnvironment(parent, "remote");
    const helper = credentialHelperEnvironment(parent);
    for (const name of NETWORK_VARIABLES) {
      expect(git[name]).toBe(`value of ${name}`);
      expect(helper[name]).toBe(`value of ${name}`);
    }
    expect(gitEnvironment(parent, "none").HTTPS_PROXY).toBeUndefined();
  });
});
