/**
 * Counts and sizes as people read them, the same in every output (terminal lines, check
 * markdown, validate's summary, audit reasons). Pure.
 */

/**
 * `1 image`, `2 images`, `1,234 images`. `digits: "plain"` writes the count without thousands
 * separators (`1234 images`), as `validate`'s summary has always printed it.
 */
export function plural(
  count: number,
  word: string,
  many = `${word}s`,
  digits: "grouped" | "plain" = "grouped",
): string {
  const number = digits === "grouped" ? count.toLocaleString("en-US") : String(count);
  return `${number} ${count === 1 ? word : many}`;
}

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"] as const;

/** Bytes for people in binary units: `512 B`, `1.5 MiB`, `150 MiB` (one decimal below 100). */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${BYTE_UNITS[unit] ?? "B"}`;
}
