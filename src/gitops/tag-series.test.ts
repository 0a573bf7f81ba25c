import { describe, expect, it } from "vitest";
import { compareTagVersions, previousInSeries, tagSeries } from "./tag-series.js";

describe("tag series", () => {
  it.each([
    ["v1.2.3", "v#.#.#"],
    ["v1.10.0", "v#.#.#"],
    ["1.19.0-alpha.1", "#.#.#-alpha.#"],
    ["v1.2.3-rc.1", "v#.#.#-rc.#"],
    ["v1.2.3-amd64", "v#.#.#-amd#"],
    ["v20230312-helm-chart-4.5.2-28-g66a760794", "v#-helm-chart-#.#.#-#-g#"],
    ["v20230312-helm-chart-4.5.2-30-gabcdef0", "v#-helm-chart-#.#.#-#-g#"],
    ["latest", "latest"],
  ])("%s is in series %s", (tag, series) => {
    expect(tagSeries(tag)).toBe(series);
  });

  it("orders versions by their numbers", () => {
    const tags = ["v1.10.0", "v1.2.0", "v1.9.3", "v0.99.0", "v1.2.10", "v1.2.9"];
    expect([...tags].sort(compareTagVersions)).toEqual([
      "v0.99.0",
      "v1.2.0",
      "v1.2.9",
      "v1.2.10",
      "v1.9.3",
      "v1.10.0",
    ]);
    expect(compareTagVersions("v99999999999999999999.0", "v99999999999999999998.0")).toBe(1);
  });

  it("finds the version before, or after for a back-port, in the same series only", () => {
    const known = ["v1.0.0", "v1.1.0", "v1.3.0", "v1.3.0-amd64", "v1.2.0-rc.1", "v2"];
    expect(previousInSeries("v1.2.0", known)).toBe("v1.1.0");
    expect(previousInSeries("v1.4.0", known)).toBe("v1.3.0");
    expect(previousInSeries("v0.9.0", known)).toBe("v1.0.0");
    expect(previousInSeries("v1.2.0-rc.2", known)).toBe("v1.2.0-rc.1");
    expect(previousInSeries("v1.4.0-amd64", known)).toBe("v1.3.0-amd64");
    expect(previousInSeries("v3", known)).toBe("v2");
    expect(previousInSeries("v1.3.0", known)).toBe("v1.1.0");
    expect(previousInSeries("main", known)).toBeUndefined();
  });
});
