import { UsageError } from "../../errors.js";

/**
 * `--manifest-diff-since`: how far back a kpromo backstop looks. kpromo hands the text to
 * `git log --since`, whose date parser reads what it does not understand as "now" or as a
 * date in the future ("14d" becomes a week ahead), and the job then promotes nothing without
 * a word. Here the text is parsed strictly and anything else is refused.
 *
 * Accepted: Go-style durations with days and weeks (`14d`, `36h`, `1h30m`, `2w`); git's
 * relative forms (`7 days`, `24 hours`, `1 week`, `2 weeks ago`, `7.days.ago`, `3 months`); and
 * an ISO 8601 date or time (`2026-11-01`, `2026-11-01T12:00:00Z`, UTC when no zone is given).
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  s: 1000,
  second: 1000,
  m: 60_000,
  minute: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  w: 7 * 86_400_000,
  week: 7 * 86_400_000,
};

/**
 * The moment `text` names, counted back from `now`. A moment in the future (a mistyped date) or
 * beyond what a date can hold is refused: either would make the window empty, and the backstop
 * would promote nothing without a word.
 */
export function parseSince(text: string, now: Date): Date {
  const moment = readSince(text, now);
  if (Number.isNaN(moment.getTime())) {
    throw new UsageError(
      `--manifest-diff-since ${JSON.stringify(text)} reaches back further than a date can`,
    );
  }
  if (moment.getTime() > now.getTime()) {
    throw new UsageError(
      `--manifest-diff-since ${JSON.stringify(text)} is ${moment.toISOString()}, in the future: the window would hold nothing`,
    );
  }
  return moment;
}

function readSince(text: string, now: Date): Date {
  const trimmed = text.trim();
  const compact = /^(?:\d+[smhdw])+$/.exec(trimmed);
  if (compact) {
    let total = 0;
    for (const [, amount, unit] of trimmed.matchAll(/(\d+)([smhdw])/g)) {
      total += Number(amount) * (UNIT_MS[unit ?? ""] ?? 0);
    }
    return new Date(now.getTime() - total);
  }
  const relative = /^(\d+)[\s.]*(second|minute|hour|day|week|month|year)s?(?:[\s.]+ago)?$/i.exec(trimmed);
  if (relative) {
    const amount = Number(relative[1]);
    const unit = (relative[2] ?? "").toLowerCase();
    const moment = new Date(now.getTime());
    if (unit === "month") moment.setUTCMonth(moment.getUTCMonth() - amount);
    else if (unit === "year") moment.setUTCFullYear(moment.getUTCFullYear() - amount);
    else moment.setTime(now.getTime() - amount * (UNIT_MS[unit] ?? 0));
    return moment;
  }
  const absolute = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?)?$/.exec(trimmed);
  if (absolute) {
    const iso = trimmed.replace(" ", "T");
    const moment = new Date(
      /[Zz]|[+-]\d{2}:?\d{2}$/.test(iso.slice(10)) ? iso : iso.length === 10 ? `${iso}T00:00:00Z` : `${iso}Z`,
    );
    if (!Number.isNaN(moment.getTime())) return moment;
  }
  throw new UsageError(
    `--manifest-diff-since ${JSON.stringify(text)} is not a duration this promoter reads: write e.g. 14d, 36h, "7 days", "2 weeks" or 2026-11-01`,
  );
}
