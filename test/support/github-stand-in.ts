/**
 * A stand-in for the few GitHub REST endpoints `promoter pr` uses: a real HTTP server on
 * 127.0.0.1 that keeps state as GitHub does (repositories and forks sharing one object store,
 * branches, blobs, trees and commits of the git data API, pull requests and their requested
 * reviewers), checks the `Authorization` header on every request, and records every request.
 * Tests make it hostile with `answerNext` (a 401, a 422, a redirect, a rate limit) for the
 * requests of their choice. For the review facts of a promotion it also answers which merged pull
 * requests a commit belongs to and a pull request's reviews (paginated as GitHub does), from
 * pull requests a test registers with `addMergedPull` (their JSON as given, hostile or not).
 * https://docs.github.com/en/rest/git, https://docs.github.com/en/rest/pulls,
 * https://docs.github.com/en/rest/commits/commits#list-pull-requests-associated-with-a-commit
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface StandInRequest {
  readonly method: string;
  readonly path: string;
  readonly search: string;
  readonly authorization: string | undefined;
  readonly body: unknown;
}

interface Blob {
  readonly kind: "blob";
  readonly content: Buffer;
}
interface TreeEntry {
  readonly name: string;
  readonly mode: string;
  readonly type: "blob" | "tree";
  readonly sha: string;
}
interface Tree {
  readonly kind: "tree";
  readonly entries: readonly TreeEntry[];
}
interface Commit {
  readonly kind: "commit";
  readonly tree: string;
  readonly parents: readonly string[];
  readonly message: string;
}
type GitObject = Blob | Tree | Commit;

export interface StandInRepo {
  readonly owner: string;
  readonly name: string;
  readonly defaultBranch: string;
  readonly parent?: string;
  readonly refs: Map<string, string>;
}

export interface StandInPull {
  readonly number: number;
  readonly base: string;
  /** `owner:branch` */
  readonly head: string;
  readonly title: string;
  readonly body: string;
  readonly repo: string;
  readonly reviewers: string[];
  readonly teams: string[];
}

/** A merged pull request as the API shows it: its JSON, the commits it is associated with, its reviews. */
export interface StandInMergedPull {
  readonly repo: string;
  readonly number: number;
  /** The pull request object `GET /commits/{sha}/pulls` lists (as given: a test may make it hostile). */
  readonly json: Record<string, unknown>;
  /** Commits GitHub associates with it (its merge commit, its head). */
  readonly commits: readonly string[];
  /** Review objects, oldest first, as `GET /pulls/{n}/reviews` lists them. */
  readonly reviews: readonly unknown[];
}

/**
 * A review object as GitHub writes it, by a member of the repository's organisation (spread
 * `author_association` over it for another); `commitId` is the commit it reviewed (`addMergedPull`
 * gives the pull request's head to a review without one, as a review of the head is the usual case).
 */
export function standInReview(
  login: string,
  state: string,
  submittedAt: string,
  commitId?: string,
): Record<string, unknown> {
  return {
    id: 1,
    user: { login, type: "User" },
    state,
    submitted_at: submittedAt,
    body: "",
    author_association: "MEMBER",
    ...(commitId === undefined ? {} : { commit_id: commitId }),
  };
}

/** A scripted answer for the next matching requests, before the stand-in's own logic. */
export interface ScriptedAnswer {
  readonly method: string;
  readonly path: RegExp;
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: unknown;
  /** How many matching requests get it (default 1). */
  times?: number;
}

/** A string field of a request body, or "" (a stand-in answers what GitHub would to a bad one). */
function text(body: Record<string, unknown> | undefined, key: string): string {
  const value = body?.[key];
  return typeof value === "string" ? value : "";
}

export class GitHubStandIn {
  readonly requests: StandInRequest[] = [];
  readonly repos = new Map<string, StandInRepo>();
  readonly pulls: StandInPull[] = [];
  readonly mergedPulls: StandInMergedPull[] = [];
  private readonly objects = new Map<string, GitObject>();
  private readonly scripted: ScriptedAnswer[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
    readonly token: string,
    readonly login: string,
  ) {
    server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  static async start(options: { token: string; login: string }): Promise<GitHubStandIn> {
    const holder: { standIn?: GitHubStandIn } = {};
    const server = createServer((request, response) => {
      void holder.standIn?.handle(request, response);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    holder.standIn = new GitHubStandIn(server, `http://127.0.0.1:${port}`, options.token, options.login);
    return holder.standIn;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) =>
      this.server.close(() => {
        resolve();
      }),
    );
  }

  answerNext(answer: ScriptedAnswer): void {
    this.scripted.push({ ...answer, times: answer.times ?? 1 });
  }

  /** Requests that change state (everything but GET). */
  writes(): StandInRequest[] {
    return this.requests.filter((request) => request.method !== "GET");
  }

  /** A repository whose default branch holds `files` (path -> text) in one commit. */
  addRepo(fullName: string, files: Readonly<Record<string, string>>, defaultBranch = "main"): string {
    const [owner = "", name = ""] = fullName.split("/");
    const tree = this.buildTree(
      new Map(
        Object.entries(files).map(([file, text]) => [file, { mode: "100644", content: Buffer.from(text) }]),
      ),
    );
    const commit = this.store({ kind: "commit", tree, parents: [], message: "initial" });
    this.repos.set(fullName.toLowerCase(), {
      owner,
      name,
      defaultBranch,
      refs: new Map([[defaultBranch, commit]]),
    });
    return commit;
  }

  /** A new commit on `branch` of `fullName` that sets `files` (path -> text). */
  commitFiles(fullName: string, branch: string, files: Readonly<Record<string, string>>): string {
    const repo = this.repo(fullName);
    const head = repo?.refs.get(branch);
    if (!repo || head === undefined) throw new Error(`no branch ${branch} in ${fullName}`);
    const flat = this.flatten(this.commitOf(head).tree);
    for (const [file, text] of Object.entries(files))
      flat.set(file, { mode: "100644", content: Buffer.from(text) });
    const commit = this.store({
      kind: "commit",
      tree: this.buildTree(flat),
      parents: [head],
      message: "change",
    });
    repo.refs.set(branch, commit);
    return commit;
  }

  /**
   * A merged pull request of `fullName`: `merge` is its merge commit, `head` its branch's tip.
   * `json` overrides fields of the pull request object (a hostile test's wrong types).
   */
  addMergedPull(
    fullName: string,
    pull: {
      readonly number: number;
      readonly author: string;
      readonly head: string;
      readonly base: { readonly ref: string; readonly sha: string };
      readonly merge: string;
      readonly reviews: readonly unknown[];
      readonly json?: Record<string, unknown>;
    },
  ): void {
    this.mergedPulls.push({
      repo: fullName.toLowerCase(),
      number: pull.number,
      json: {
        number: pull.number,
        html_url: `https://github.com/${fullName}/pull/${pull.number}`,
        state: "closed",
        user: { login: pull.author },
        head: { sha: pull.head, ref: "feature" },
        base: { sha: pull.base.sha, ref: pull.base.ref },
        merge_commit_sha: pull.merge,
        merged_at: "2026-12-05T12:00:00Z",
        ...pull.json,
      },
      commits: [pull.merge, pull.head],
      reviews: pull.reviews.map((review) =>
        typeof review === "object" && review !== null && !("commit_id" in review)
          ? { ...review, commit_id: pull.head }
          : review,
      ),
    });
  }

  /** A fork of `parent`, as GitHub makes one (the default branch only). */
  addFork(fullName: string, parent: string): void {
    const source = this.repo(parent);
    if (!source) throw new Error(`no repository ${parent}`);
    const [owner = "", name = ""] = fullName.split("/");
    this.repos.set(fullName.toLowerCase(), {
      owner,
      name,
      defaultBranch: source.defaultBranch,
      parent: `${source.owner}/${source.name}`,
      refs: new Map([[source.defaultBranch, source.refs.get(source.defaultBranch) ?? ""]]),
    });
  }

  repo(fullName: string): StandInRepo | undefined {
    return this.repos.get(fullName.toLowerCase());
  }

  /** The text of `file` on `branch` of `fullName`, or undefined. */
  fileAt(fullName: string, branch: string, file: string): string | undefined {
    const head = this.repo(fullName)?.refs.get(branch);
    if (head === undefined) return undefined;
    return this.flatten(this.commitOf(head).tree).get(file)?.content.toString("utf8");
  }

  commitOf(sha: string): Commit {
    const object = this.objects.get(sha);
    if (object?.kind !== "commit") throw new Error(`${sha} is not a commit`);
    return object;
  }

  private store(object: GitObject): string {
    const payload =
      object.kind === "blob"
        ? Buffer.concat([Buffer.from(`blob ${object.content.byteLength}\0`), object.content])
        : Buffer.from(JSON.stringify(object));
    const sha = createHash("sha1").update(payload).digest("hex");
    this.objects.set(sha, object);
    return sha;
  }

  private buildTree(files: ReadonlyMap<string, { mode: string; content: Buffer }>): string {
    const direct: TreeEntry[] = [];
    const folders = new Map<string, Map<string, { mode: string; content: Buffer }>>();
    for (const [file, entry] of files) {
      const slash = file.indexOf("/");
      if (slash < 0) {
        direct.push({
          name: file,
          mode: entry.mode,
          type: "blob",
          sha: this.store({ kind: "blob", content: entry.content }),
        });
      } else {
        const folder = file.slice(0, slash);
        const inner = folders.get(folder) ?? new Map<string, { mode: string; content: Buffer }>();
        inner.set(file.slice(slash + 1), entry);
        folders.set(folder, inner);
      }
    }
    for (const [folder, inner] of folders) {
      direct.push({ name: folder, mode: "040000", type: "tree", sha: this.buildTree(inner) });
    }
    direct.sort((a, b) => a.name.localeCompare(b.name));
    return this.store({ kind: "tree", entries: direct });
  }

  private flatten(treeSha: string, prefix = ""): Map<string, { mode: string; content: Buffer }> {
    const result = new Map<string, { mode: string; content: Buffer }>();
    const tree = this.objects.get(treeSha);
    if (tree?.kind !== "tree") throw new Error(`${treeSha} is not a tree`);
    for (const entry of tree.entries) {
      const file = `${prefix}${entry.name}`;
      if (entry.type === "tree")
        for (const [inner, value] of this.flatten(entry.sha, `${file}/`)) result.set(inner, value);
      else {
        const blob = this.objects.get(entry.sha);
        if (blob?.kind === "blob") result.set(file, { mode: entry.mode, content: blob.content });
      }
    }
    return result;
  }

  private listTree(
    treeSha: string,
    recursive: boolean,
    prefix = "",
  ): { path: string; mode: string; type: string; sha: string }[] {
    const tree = this.objects.get(treeSha);
    if (tree?.kind !== "tree") return [];
    return tree.entries.flatMap((entry) => {
      const own = { path: `${prefix}${entry.name}`, mode: entry.mode, type: entry.type, sha: entry.sha };
      return recursive && entry.type === "tree"
        ? [own, ...this.listTree(entry.sha, true, `${own.path}/`)]
        : [own];
    });
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const url = new URL(request.url ?? "/", this.url);
    const text = Buffer.concat(chunks).toString("utf8");
    let body: unknown;
    try {
      body = text === "" ? undefined : JSON.parse(text);
    } catch {
      body = text;
    }
    const method = request.method ?? "GET";
    const recorded = {
      method,
      path: url.pathname,
      search: url.search,
      authorization: request.headers.authorization,
      body,
    };
    this.requests.push(recorded);
    const send = (status: number, json?: unknown, headers: Readonly<Record<string, string>> = {}) => {
      response.writeHead(status, { "content-type": "application/json", ...headers });
      response.end(json === undefined ? "" : JSON.stringify(json));
    };
    const script = this.scripted.find(
      (answer) => answer.method === method && answer.path.test(url.pathname) && (answer.times ?? 0) > 0,
    );
    if (script) {
      script.times = (script.times ?? 1) - 1;
      send(script.status, script.body, script.headers);
      return;
    }
    if (
      request.headers.authorization !== `Bearer ${this.token}` &&
      request.headers.authorization !== `token ${this.token}`
    ) {
      send(401, { message: "Bad credentials", documentation_url: "https://docs.github.com/rest" });
      return;
    }
    try {
      const answer = this.route(method, url, body as Record<string, unknown> | undefined);
      send(answer.status, answer.json);
    } catch (error) {
      send(500, { message: `stand-in: ${(error as Error).message}` });
    }
  }

  private route(
    method: string,
    url: URL,
    body: Record<string, unknown> | undefined,
  ): { status: number; json?: unknown } {
    const notFound = { status: 404, json: { message: "Not Found" } };
    const path = url.pathname;
    if (method === "GET" && path === "/user") return { status: 200, json: { login: this.login } };
    const match = /^\/repos\/([^/]+)\/([^/]+)(\/.*)?$/.exec(path);
    if (!match) return notFound;
    const fullName = `${match[1]}/${match[2]}`;
    const rest = match[3] ?? "";
    const reviewed = this.routeMergedPulls(method, url, fullName.toLowerCase(), rest);
    if (reviewed) return reviewed;
    const repo = this.repo(fullName);
    if (method === "POST" && rest === "/forks") {
      if (!repo) return notFound;
      const owner = typeof body?.organization === "string" ? body.organization : this.login;
      const name = typeof body?.name === "string" ? body.name : repo.name;
      const forkName = `${owner}/${name}`;
      if (!this.repo(forkName)) this.addFork(forkName, fullName);
      return { status: 202, json: this.repoJson(this.repo(forkName)!) };
    }
    if (!repo) return notFound;
    if (method === "GET" && rest === "") return { status: 200, json: this.repoJson(repo) };
    const ref = /^\/git\/ref\/heads\/(.+)$/.exec(rest);
    if (method === "GET" && ref) {
      const sha = repo.refs.get(ref[1] ?? "");
      return sha === undefined
        ? notFound
        : { status: 200, json: { ref: `refs/heads/${ref[1]}`, object: { sha, type: "commit" } } };
    }
    if (method === "POST" && rest === "/git/refs") {
      const name = text(body, "ref").replace(/^refs\/heads\//, "");
      const sha = text(body, "sha");
      if (repo.refs.has(name)) return { status: 422, json: { message: "Reference already exists" } };
      if (this.objects.get(sha)?.kind !== "commit")
        return { status: 422, json: { message: "Object does not exist" } };
      repo.refs.set(name, sha);
      return { status: 201, json: { ref: `refs/heads/${name}`, object: { sha, type: "commit" } } };
    }
    const commit = /^\/git\/commits\/([0-9a-f]{40})$/.exec(rest);
    if (method === "GET" && commit) {
      const object = this.objects.get(commit[1] ?? "");
      if (object?.kind !== "commit") return notFound;
      return {
        status: 200,
        json: {
          sha: commit[1],
          tree: { sha: object.tree },
          parents: object.parents.map((sha) => ({ sha })),
          message: object.message,
        },
      };
    }
    if (method === "POST" && rest === "/git/commits") {
      const tree = text(body, "tree");
      const parents = Array.isArray(body?.parents) ? body.parents.map(String) : [];
      if (
        this.objects.get(tree)?.kind !== "tree" ||
        parents.some((sha) => this.objects.get(sha)?.kind !== "commit")
      ) {
        return { status: 422, json: { message: "Tree or parent does not exist" } };
      }
      const sha = this.store({ kind: "commit", tree, parents, message: text(body, "message") });
      return { status: 201, json: { sha, tree: { sha: tree } } };
    }
    const tree = /^\/git\/trees\/([0-9a-f]{40})$/.exec(rest);
    if (method === "GET" && tree) {
      if (this.objects.get(tree[1] ?? "")?.kind !== "tree") return notFound;
      return {
        status: 200,
        json: {
          sha: tree[1],
          tree: this.listTree(tree[1] ?? "", url.searchParams.get("recursive") === "1"),
          truncated: false,
        },
      };
    }
    if (method === "POST" && rest === "/git/trees") {
      const base =
        typeof body?.base_tree === "string"
          ? this.flatten(body.base_tree)
          : new Map<string, { mode: string; content: Buffer }>();
      for (const entry of Array.isArray(body?.tree) ? (body.tree as Record<string, unknown>[]) : []) {
        base.set(String(entry.path), {
          mode: String(entry.mode),
          content: Buffer.from(String(entry.content)),
        });
      }
      return { status: 201, json: { sha: this.buildTree(base) } };
    }
    const blob = /^\/git\/blobs\/([0-9a-f]{40})$/.exec(rest);
    if (method === "GET" && blob) {
      const object = this.objects.get(blob[1] ?? "");
      if (object?.kind !== "blob") return notFound;
      return {
        status: 200,
        json: {
          sha: blob[1],
          size: object.content.byteLength,
          encoding: "base64",
          content: object.content.toString("base64"),
        },
      };
    }
    if (method === "GET" && rest === "/pulls") {
      const head = url.searchParams.get("head");
      const open = this.pulls.filter(
        (pull) => pull.repo === `${repo.owner}/${repo.name}` && (head === null || pull.head === head),
      );
      return { status: 200, json: open.map((pull) => this.pullJson(pull)) };
    }
    if (method === "POST" && rest === "/pulls") {
      const head = text(body, "head");
      const [headOwner = "", headBranch = ""] = head.split(":");
      const headRepo = [...this.repos.values()].find(
        (candidate) =>
          candidate.owner.toLowerCase() === headOwner.toLowerCase() &&
          candidate.parent === `${repo.owner}/${repo.name}`,
      );
      if (!headRepo?.refs.has(headBranch) || !repo.refs.has(text(body, "base"))) {
        return {
          status: 422,
          json: {
            message: "Validation Failed",
            errors: [{ resource: "PullRequest", field: "head", code: "invalid" }],
          },
        };
      }
      if (this.pulls.some((pull) => pull.repo === `${repo.owner}/${repo.name}` && pull.head === head)) {
        return {
          status: 422,
          json: {
            message: "Validation Failed",
            errors: [{ message: `A pull request already exists for ${head}.` }],
          },
        };
      }
      const pull: StandInPull = {
        number: this.pulls.length + 1,
        base: text(body, "base"),
        head,
        title: text(body, "title"),
        body: text(body, "body"),
        repo: `${repo.owner}/${repo.name}`,
        reviewers: [],
        teams: [],
      };
      this.pulls.push(pull);
      return { status: 201, json: this.pullJson(pull) };
    }
    const reviewers = /^\/pulls\/(\d+)\/requested_reviewers$/.exec(rest);
    if (method === "POST" && reviewers) {
      const pull = this.pulls.find(
        (candidate) =>
          candidate.number === Number(reviewers[1]) && candidate.repo === `${repo.owner}/${repo.name}`,
      );
      if (!pull) return notFound;
      for (const user of Array.isArray(body?.reviewers) ? body.reviewers.map(String) : [])
        if (!pull.reviewers.includes(user)) pull.reviewers.push(user);
      for (const team of Array.isArray(body?.team_reviewers) ? body.team_reviewers.map(String) : [])
        if (!pull.teams.includes(team)) pull.teams.push(team);
      return { status: 201, json: this.pullJson(pull) };
    }
    return notFound;
  }

  /** `GET /commits/{sha}/pulls` and `GET /pulls/{n}/reviews` of registered merged pull requests. */
  private routeMergedPulls(
    method: string,
    url: URL,
    repo: string,
    rest: string,
  ): { status: number; json?: unknown } | undefined {
    if (method !== "GET") return undefined;
    const ofCommit = /^\/commits\/([0-9a-f]{40})\/pulls$/.exec(rest);
    if (ofCommit) {
      const pulls = this.mergedPulls.filter(
        (pull) => pull.repo === repo && pull.commits.includes(ofCommit[1] ?? ""),
      );
      return { status: 200, json: pulls.map((pull) => pull.json) };
    }
    const reviews = /^\/pulls\/(\d+)\/reviews$/.exec(rest);
    if (!reviews) return undefined;
    const pull = this.mergedPulls.find(
      (candidate) => candidate.repo === repo && candidate.number === Number(reviews[1]),
    );
    if (!pull) return undefined;
    const perPage = Math.min(100, Number(url.searchParams.get("per_page") ?? "30"));
    const page = Math.max(1, Number(url.searchParams.get("page") ?? "1"));
    return { status: 200, json: pull.reviews.slice((page - 1) * perPage, page * perPage) };
  }

  private repoJson(repo: StandInRepo) {
    return {
      full_name: `${repo.owner}/${repo.name}`,
      name: repo.name,
      owner: { login: repo.owner },
      default_branch: repo.defaultBranch,
      fork: repo.parent !== undefined,
      ...(repo.parent === undefined ? {} : { parent: { full_name: repo.parent } }),
    };
  }

  private pullJson(pull: StandInPull) {
    return {
      number: pull.number,
      html_url: `https://github.example/${pull.repo}/pull/${pull.number}`,
      title: pull.title,
      body: pull.body,
      head: { label: pull.head },
      base: { ref: pull.base },
      requested_reviewers: pull.reviewers.map((login) => ({ login })),
      requested_teams: pull.teams.map((slug) => ({ slug })),
    };
  }
}
