/**
 * Tag series: the tags of one image that name successive versions of the same thing. A tag's
 * series is its shape with every number replaced by `#` (and a git-describe hash `-g1a2b3c4` by
 * `-g#`): `v1.2.3` and `v1.10.0` are both `v#.#.#`; `v1.2.3-rc.1` is `v#.#.#-rc.#`;
 * `v1.2.3-amd64` is `v#.#.#-amd64`, a series of its own (a single-platform series is normal).
 * Within a series, tags are ordered by their numbers. Pure.
 *
 * `promoter check` compares a new tag's image kind (index or single-platform manifest) with the
 * kind of the previous version in its series: a multi-arch series that suddenly gets an
 * amd64-only digest is the incident this catches.
 */

const GIT_DESCRIBE_HASH = /-g[0-9a-f]{7,40}(?=$|[^0-9a-z])/g;
const NUMBER = /\d+/g;

export function tagSeries(tag: string): string {
  return tag.replace(GIT_DESCRIBE_HASH, "-g#").replace(NUMBER, "#");
}

/** Splits into runs of digits and runs of other characters. */
function tokens(tag: string): string[] {
  return tag.replace(GIT_DESCRIBE_HASH, "-g#").match(/\d+|\D+/g) ?? [];
}

/** Orders tags of one series by their numbers (`v1.9.0` < `v1.10.0`), then as text. */
export function compareTagVersions(a: string, b: string): number {
  const left = tokens(a);
  const right = tokens(b);
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    const x = left[i] ?? "";
    const y = right[i] ?? "";
    if (x === y) continue;
    const numeric = /^\d/.test(x) && /^\d/.test(y);
    if (numeric) {
      const difference = BigInt(x) - BigInt(y);
      if (difference !== 0n) return difference < 0n ? -1 : 1;
      continue;
    }
    return x < y ? -1 : 1;
  }
  return left.length - right.length || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * The version of `tag`'s series that came before it among `candidates`: the greatest one below
 * it, or (for a tag older than everything listed, such as a back-port) the least one above it.
 * Undefined when no candidate is in the series.
 */
export function previousInSeries(tag: string, candidates: Iterable<string>): string | undefined {
  const series = tagSeries(tag);
  let below: string | undefined;
  let above: string | undefined;
  for (const candidate of candidates) {
    if (candidate === tag || tagSeries(candidate) !== series) continue;
    const order = compareTagVersions(candidate, tag);
    if (order < 0) {
      if (below === undefined || compareTagVersions(candidate, below) > 0) below = candidate;
    } else if (order > 0) {
      if (above === undefined || compareTagVersions(candidate, above) < 0) above = candidate;
    }
  }
  return below ?? above;
}
