/**
 * Joins the sections of a text output (a plan, source signatures, signatures and attachments, a
 * repair plan) with exactly one blank line between two sections, whatever blank lines each one
 * starts or ends with; empty sections are left out. The result ends with one line feed, or is
 * empty. Renderers then need not agree on who writes the blank line, and none goes missing.
 */
export function textSections(sections: readonly string[]): string {
  const kept = sections
    .map((section) => section.replace(/^(?:[ \t]*\n)+/, "").replace(/\s+$/, ""))
    .filter((section) => section !== "");
  return kept.length === 0 ? "" : `${kept.join("\n\n")}\n`;
}
