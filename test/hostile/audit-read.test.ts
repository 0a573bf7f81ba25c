import { execFileSync } from "node:child_process";
import { createServer, type Server } from "node:http";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FindingStore } from "../../src/audit/finding-store.js";
import { startGitHttpServer, type GitHttpServer } from "../support/git-http-server.js";
import { PromoterProcess, requireBuiltCli } from "../support/promoter-process.js";

/**
 * The auditor's read side (issue "Untrusted pull requests", finding 8), against `promoter audit
 * serve` as a child process: who may read the findings, how much one read may ask for, that
 * readers cannot stall the intake of registry notifications, and that the secrets it is given
 * (the alert webhook URL, credentials in the manifests' git URL) are not on any command line
 * another local user can read in /proc/<pid>/cmdline.
 */

const INGEST_TOKEN = "ingest-token-5e1f0a9b7c3d4e2f";
const READER_TOKEN = "reader-token-8b2c6d0e4f1a3b5c";
const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;
/** Findings already in the database: enough that a full scan takes a while. */
const SEEDED_FINDINGS = 100_000;
/** Violations among them (every third), for paging through a filter. */
const SEEDED_VIOLATIONS = Math.ceil(SEEDED_FINDINGS / 3);

let work: string;
let server: PromoterProcess;
let url: string;

function manifestText(entries: Record<string, string[]>): string {
  return [
    "registries:",
    "- name: stage.example/staging",
    "  src: true",
    "- name: prod.example/images",
    "images:",
    "- name: app",
    "  dmap:",
    ...Object.entries(entries).map(([digest, tags]) => `    "${digest}": ${JSON.stringify(tags)}`),
    "",
  ].join("\n");
}

/** Fills a findings database the way a long-running auditor would have. */
function seedDatabase(file: string): void {
  FindingStore.open(file).close();
  const db = new Database(file);
  const insert = db.prepare(`INSERT INTO findings (event_id, verdict, rule, action, repository, digest, tag,
      media_type, reason, source, event_time, received_at, decided_at)
    VALUES (?, ?, 'unexpected-tag', 'push', ?, ?, ?, 'application/vnd.oci.image.manifest.v1+json', ?,
      'distribution', ?, ?, ?)`);
  const reason = "pushed by hand: no manifest asks for this tag ".repeat(4);
  db.transaction(() => {
    for (let i = 0; i < SEEDED_FINDINGS; i++) {
      const time = new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();
      insert.run(
        `distribution:seed-${i}`,
        i % 3 === 0 ? "violation" : "verified",
        `prod.example/images/app${i % 50}`,
        `sha256:${i.toString(16).padStart(64, "0")}`,
        `t${i}`,
        reason,
        time,
        time,
        time,
      );
    }
  })();
  db.close();
}

/** Starts `audit serve` and returns it once it listens (its URL is in its log). */
async function startServe(args: readonly string[], env: Record<string, string> = {}) {
  const child = PromoterProcess.start(
    ["audit", "serve", "--listen", "127.0.0.1:0", "--token-file", "ingest-token", ...args],
    { cwd: work, env },
  );
  const listening = await child.waitFor((stdout) => {
    for (const line of stdout.split("\n")) {
      if (!line.includes('"audit server listening"')) continue;
      return (JSON.parse(line) as { url: string }).url;
    }
    return undefined;
  }, 60_000);
  return { child, url: listening };
}

function event(id: string, tag: string, digest = D2) {
  return {
    events: [
      {
        id,
        action: "push",
        target: {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          digest,
          tag,
          repository: "images/app",
        },
        request: { host: "prod.example" },
      },
    ],
  };
}

async function postEvent(base: string, id: string, tag: string): Promise<number> {
  const response = await fetch(`${base}/events/prod.example`, {
    method: "POST",
    headers: { authorization: `Bearer ${INGEST_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(event(id, tag)),
  });
  await response.arrayBuffer();
  return response.status;
}

/** `GET /findings` with a bearer token (`null`: none). */
function read(query: string, token: string | null = READER_TOKEN): Promise<Response> {
  return fetch(
    `${url}/findings${query}`,
    token === null ? {} : { headers: { authorization: `Bearer ${token}` } },
  );
}

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "hostile-audit-read-"));
  await writeFile(path.join(work, "manifest.yaml"), manifestText({ [D1]: ["1.0"] }));
  await writeFile(path.join(work, "ingest-token"), `${INGEST_TOKEN}\n`, { mode: 0o600 });
  await writeFile(path.join(work, "reader-token"), `${READER_TOKEN}\n`, { mode: 0o600 });
  seedDatabase(path.join(work, "audit.db"));
  ({ child: server, url } = await startServe([
    "--manifest",
    "manifest.yaml",
    "--db",
    "audit.db",
    "--reader-token-file",
    "reader-token",
  ]));
}, 180_000);

afterAll(async () => {
  await (server as PromoterProcess | undefined)?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("GET /findings", () => {
  it("needs the reader token: not none, not a wrong one, not the notification senders' token", async () => {
    for (const token of [null, "reader-token-wrong-0000000000", INGEST_TOKEN]) {
      const response = await read("?limit=1", token);
      expect(response.status).toBe(401);
      expect(JSON.stringify(await response.json())).not.toContain("seed-");
    }
    const allowed = await read("?limit=1");
    expect(allowed.status).toBe(200);
    expect(((await allowed.json()) as { findings: unknown[] }).findings).toHaveLength(1);
  });

  it("answers in bounded pages: a huge limit is refused, and a cursor walks the rest", async () => {
    const huge = await read("?limit=10000");
    expect(huge.status).toBe(400);
    expect(((await huge.json()) as { error: string }).error).toMatch(
      /limit must be a whole number from 1 to \d+/,
    );

    // Every violation, page by page, each once.
    const seen = new Set<number>();
    let query = "?verdict=violation&limit=500";
    let pages = 0;
    for (;;) {
      const response = await read(query);
      expect(response.status).toBe(200);
      const page = (await response.json()) as { findings: { seq: number }[]; next: number | null };
      expect(page.findings.length).toBeLessThanOrEqual(500);
      for (const finding of page.findings) {
        expect(seen.has(finding.seq)).toBe(false);
        seen.add(finding.seq);
      }
      pages += 1;
      if (page.next === null) break;
      query = `?verdict=violation&limit=500&before=${page.next}`;
    }
    expect(seen.size).toBe(SEEDED_VIOLATIONS);
    expect(pages).toBe(Math.ceil(SEEDED_VIOLATIONS / 500));
  });

  it("from many readers at once does not hold up the notifications", async () => {
    // Twelve readers ask for what no index answers (a full scan of the database each, one
    // after another on the reader's worker). Notifications sent meanwhile must be answered
    // while most of those reads are still waiting: on the event loop, every scan ahead of a
    // notification would delay it. Half the reads is the margin that keeps a busy CI machine
    // (slow intake, fast scans) from judging the machine instead of the intake.
    const READERS = 12;
    let readsFinished = 0;
    const reads = Array.from({ length: READERS }, () =>
      read("?tag=no-such-tag&limit=500").then(async (response) => {
        readsFinished += 1;
        expect(response.status).toBe(200);
        expect(((await response.json()) as { findings: unknown[] }).findings).toEqual([]);
      }),
    );
    const finishedWhenAnswered = await Promise.all(
      Array.from({ length: 3 }, async (_, i) => {
        expect(await postEvent(url, `intake-${i}`, `intake-${i}`)).toBe(200);
        return readsFinished;
      }),
    );
    await Promise.all(reads);
    for (const finished of finishedWhenAnswered) expect(finished).toBeLessThan(READERS / 2);
  });
});

describe("secrets given to audit serve", () => {
  const GIT_USER = "auditor";
  const GIT_PASSWORD = "git-pw-3c9d1e7a5b2f4a60";
  const HOOK_SECRET = "T000/B000/hook-secret-6f2a9c1d";
  let git: GitHttpServer;
  let hook: Server;
  const alerts: { path: string; text: string }[] = [];

  beforeAll(async () => {
    // The manifests in a git repository behind Basic auth.
    const repositories = path.join(work, "git");
    const source = path.join(work, "manifests-source");
    await mkdir(source, { recursive: true });
    await writeFile(path.join(source, "promoter-manifest.yaml"), manifestText({ [D1]: ["1.0"] }));
    const run = (cwd: string, ...args: string[]) =>
      execFileSync("git", args, {
        cwd,
        env: {
          ...process.env,
          GIT_AUTHOR_NAME: "t",
          GIT_AUTHOR_EMAIL: "t@t",
          GIT_COMMITTER_NAME: "t",
          GIT_COMMITTER_EMAIL: "t@t",
        },
      });
    run(source, "init", "--quiet", "--initial-branch", "main");
    run(source, "add", ".");
    run(source, "commit", "--quiet", "-m", "manifests");
    await mkdir(repositories);
    run(repositories, "clone", "--quiet", "--bare", source, "manifests.git");
    git = await startGitHttpServer(repositories, GIT_USER, GIT_PASSWORD);

    hook = createServer((request, response) => {
      let text = "";
      request.on("data", (chunk: Buffer) => (text += chunk.toString()));
      request.on("end", () => {
        alerts.push({ path: request.url ?? "", text });
        response.end();
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
  });

  afterAll(async () => {
    await (git as GitHttpServer | undefined)?.close();
    const server = hook as Server | undefined;
    if (server) await new Promise((resolve) => server.close(resolve));
  });

  it("from a file and the environment stay off every command line and out of the clone", async () => {
    const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/services/${HOOK_SECRET}`;
    const gitUrl = `${git.url.replace("://", `://${GIT_USER}:${GIT_PASSWORD}@`)}/manifests.git`;
    await writeFile(path.join(work, "alert-webhook"), `${hookUrl}\n`, { mode: 0o600 });
    // Every git command the auditor runs is recorded with its arguments.
    const bin = path.join(work, "bin");
    await mkdir(bin, { recursive: true });
    const gitLog = path.join(work, "git-argv.log");
    await writeFile(
      path.join(bin, "git"),
      `#!/bin/sh\nprintf '%s\\n' "$*" >> "${gitLog}"\nexec /usr/bin/git "$@"\n`,
    );
    await chmod(path.join(bin, "git"), 0o755);
    const temp = path.join(work, "tmp");
    await mkdir(temp);

    const { child, url: base } = await startServe(
      [
        "--git-url",
        "env://MANIFESTS_GIT_URL",
        "--path",
        "promoter-manifest.yaml",
        "--alert-webhook-file",
        "alert-webhook",
        "--reader-token-file",
        "reader-token",
        "--db",
        "secrets.db",
        "--reload-interval",
        "1",
      ],
      { MANIFESTS_GIT_URL: gitUrl, PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`, TMPDIR: temp },
    );
    try {
      // The secrets work: the clone and fetches authenticate, a violation reaches the webhook.
      expect(await postEvent(base, "secret-violation", "rogue")).toBe(200);
      for (
        let i = 0;
        i < 1500 && (alerts.length === 0 || git.requests.filter((r) => r.authorized).length < 4);
        i++
      ) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(alerts.map((alert) => alert.path)).toEqual([`/services/${HOOK_SECRET}`]);
      expect(alerts[0]?.text).toMatch(/rogue/);
      expect(git.requests.filter((request) => request.authorized).length).toBeGreaterThanOrEqual(4);

      // What another local user can read: the server's command line, every git command line.
      const cmdline = (await readFile(`/proc/${child.pid}/cmdline`)).toString().split("\0").join(" ");
      const gitCommands = await readFile(gitLog, "utf8");
      expect(gitCommands).toMatch(/clone/);
      expect(gitCommands).toMatch(/fetch/);
      // The clone's configuration (its remote URL) is on disk, readable by the umask.
      const [checkout] = (await readdir(temp)).filter((name) => name.startsWith("promoter-audit-git-"));
      const gitConfig = await readFile(
        path.join(temp, checkout ?? "missing", "checkout", ".git", "config"),
        "utf8",
      );
      const logs = `${child.stdout}\n${child.stderr}`;
      for (const [what, text] of [
        ["the command line", cmdline],
        ["git's command lines", gitCommands],
        ["the clone's .git/config", gitConfig],
        ["the logs", logs],
      ] as const) {
        for (const secret of [GIT_PASSWORD, HOOK_SECRET])
          expect(text, `${secret} in ${what}`).not.toContain(secret);
      }
    } finally {
      expect(await child.stop()).toBe(0);
    }
  });
});
