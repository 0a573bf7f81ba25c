/**
 * A unified diff of one file edited in one place, as `--dry-run` shows the commit it would make.
 * `manifest add` changes one stretch of lines per image (added lines, or one line whose flow
 * list of tags grew), so the common start and end are cut and what is left is one hunk. When an
 * edit touches two places the hunk spans both, which is still a true diff. Pure: text in, text out.
 */

const CONTEXT_LINES = 3;

function lines(text: string): string[] {
  if (text === "") return [];
  const split = text.split("\n");
  if (split.at(-1) === "") split.pop();
  return split;
}

export function unifiedDiff(file: string, before: string, after: string): string {
  if (before === after) return "";
  const old = lines(before);
  const next = lines(after);
  let start = 0;
  while (start < old.length && start < next.length && old[start] === next[start]) start++;
  let endOld = old.length;
  let endNew = next.length;
  while (endOld > start && endNew > start && old[endOld - 1] === next[endNew - 1]) {
    endOld--;
    endNew--;
  }
  const from = Math.max(0, start - CONTEXT_LINES);
  const toOld = Math.min(old.length, endOld + CONTEXT_LINES);
  const toNew = Math.min(next.length, endNew + CONTEXT_LINES);
  const range = (first: number, count: number) => `${count === 0 ? first : first + 1},${count}`;
  const body = [
    ...old.slice(from, start).map((line) => ` ${line}`),
    ...old.slice(start, endOld).map((line) => `-${line}`),
    ...next.slice(start, endNew).map((line) => `+${line}`),
    ...old.slice(endOld, toOld).map((line) => ` ${line}`),
  ];
  return [
    `--- ${before === "" ? "/dev/null" : `a/${file}`}`,
    `+++ b/${file}`,
    `@@ -${range(from, toOld - from)} +${range(from, toNew - from)} @@`,
    ...body,
  ].join("\n");
}
