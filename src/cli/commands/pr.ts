import * as path from "node:path";
import { RefusedError, UsageError } from "../../errors.js";
import { addToManifest, ManifestAddRefusedError } from "../../gitops/index.js";
import {
  DEFAULT_GITHUB_API_URL,
  GITHUB_TOKEN_VARIABLE,
  GitHubClient,
  GitHubError,
  MAX_RATE_LIMIT_WAIT_MS,
  formatRepoName,
  openPromotionPullRequest,
  parseRepoName,
  type PromotionPullRequest,
} from "../../github/index.js";
import { createHttpStack, Redactor } from "../../registry/index.js";
import { booleanOption, stringListOption, stringOption, type Command } from "../command.js";
import { ExitCode, writeLine, type CliIO } from "../io.js";
import { createCliLogger } from "../logger.js";
import { registryOptionSpecs, storeProviderFromOptions } from "../registry-options.js";
import { registryPolicyFromOptions, registryPolicyOptionSpecs } from "../registry-policy-options.js";

const DEFAULT_UPSTREAM = "kubernetes/k8s.io";
const DEFAULT_TREE = "registry.k8s.io";

/** `promoter pr`: kpromo's `pr` over the GitHub API: fork, branch, commit, pull request, reviewers. */
export const prCommand: Command = {
  words: ["pr"],
  summary: "Open a pull request on GitHub adding an image to a project's images.yaml (kpromo pr)",
  usage:
    "pr --project P --image NAME (--tag T ... | --digest D) [--fork OWNER[/NAME]] [--reviewers R,...]\n" +
    "        [--upstream OWNER/NAME] [--thin-manifest-dir DIR] [--branch B] [--dry-run] [--github-api-url URL]",
  description: `
Does what kpromo pr does, through the GitHub REST API instead of a git clone: finds your fork of
the upstream repository (--upstream, default ${DEFAULT_UPSTREAM}) or creates it, reads the
thin-manifest tree (--thin-manifest-dir, a folder of that repository, default ${DEFAULT_TREE}) at
the head of upstream's default branch, adds the image to images/P/images.yaml with the engine of
promoter manifest add (the digest of each --tag is looked up in the project's staging registry;
the file keeps its layout; latest and a tag that points at another digest anywhere in the tree
are refused), commits the file on a new branch of the fork, opens the pull request against the
default branch and requests reviews (--reviewers).

The token is read from ${GITHUB_TOKEN_VARIABLE}, as kpromo reads it (it needs to create forks,
push to yours and open pull requests: a classic token with public_repo, or a fine-grained one
with contents and pull requests write). It is sent to the API's origin only, over https (plain
http only to a loopback --github-api-url), and never printed.

Running the command again does only what is missing: nothing when upstream already lists the
image with those tags; no new commit when the branch already carries the change; no second pull
request. A branch of that name that carries something else is refused. --dry-run reads
everything, then prints the branch, the diff of the commit and the requests it would send, and
sends none. GitHub's rate limits are waited out up to ${MAX_RATE_LIMIT_WAIT_MS / 1000} seconds, else reported with the time
they reset.

Not kept from kpromo: --interactive, --use-ssh and --update-repo (there is no clone), and
--staging-repo (the staging registry is the one the project's manifest names). kpromo's
--image and --digests filter what a tag matches; here --image names the one image and --digest
the one digest. kpromo cc's @kubernetes/release-engineering by default; here reviewers are
requested only when named.

Exit status: 0 opened, already open, or nothing to add; 1 refused (a moved tag, a branch that
holds another change, a repository that is not a fork of upstream, a rate limit); 2 invalid input
or usage, or a GitHub error.`,
  options: {
    project: { type: "string", valueName: "P", description: "The project folder (manifests/P, images/P)" },
    image: { type: "string", valueName: "NAME", description: "The image name below the registries" },
    tag: {
      type: "string",
      short: "t",
      multiple: true,
      valueName: "T",
      description: "A tag to add (repeatable); its digest is looked up in staging",
    },
    digest: { type: "string", valueName: "D", description: "The digest to add (sha256:...); --tag tags it" },
    fork: {
      type: "string",
      valueName: "OWNER[/NAME]",
      description: "Your fork (default: the token's user, upstream's repository name); created when missing",
    },
    reviewers: {
      type: "string",
      multiple: true,
      valueName: "R,...",
      description: "Request reviews from these logins or ORG/TEAM teams (comma-separated, repeatable)",
    },
    upstream: {
      type: "string",
      valueName: "OWNER/NAME",
      description: `The repository the pull request goes to (default ${DEFAULT_UPSTREAM})`,
    },
    "thin-manifest-dir": {
      type: "string",
      valueName: "DIR",
      description: `The thin-manifest tree's folder in that repository (default ${DEFAULT_TREE})`,
    },
    branch: {
      type: "string",
      valueName: "B",
      description: "The branch on the fork (default P-IMAGE-TAG-image-promotion)",
    },
    "dry-run": {
      type: "boolean",
      description: "Read everything and show the branch, the diff and the requests; send no write request",
    },
    "github-api-url": {
      type: "string",
      valueName: "URL",
      description: `The GitHub REST API (default ${DEFAULT_GITHUB_API_URL}; GitHub Enterprise: https://HOST/api/v3)`,
    },
    ...registryPolicyOptionSpecs,
    ...registryOptionSpecs,
  },
  async run({ io, values }) {
    const project = stringOption(values, "project");
    const image = stringOption(values, "image");
    if (!project) throw new UsageError("give --project P");
    if (!image) throw new UsageError("give --image NAME");
    const tags = stringListOption(values, "tag");
    const digest = stringOption(values, "digest");
    if (tags.length === 0 && digest === undefined)
      throw new UsageError("give --tag T (repeatable) or --digest D, or both");
    const upstream = parseRepoName(stringOption(values, "upstream") ?? DEFAULT_UPSTREAM, "--upstream");
    const forkText = stringOption(values, "fork");
    const fork = forkText === undefined ? undefined : parseRepoName(forkText, "--fork", upstream.name);
    const dryRun = booleanOption(values, "dry-run");
    const token = io.env[GITHUB_TOKEN_VARIABLE];
    if (token === undefined || token.trim() === "") {
      throw new GitHubError(
        "github-auth",
        `set ${GITHUB_TOKEN_VARIABLE} to a GitHub token (promoter pr reads it from the environment)`,
      );
    }

    const logger = createCliLogger(io.stderr, { format: "text", level: "warn" });
    const secrets = io.secrets ?? new Redactor();
    const http = createHttpStack({ logger, redactor: secrets });
    const provider = storeProviderFromOptions(values, io, logger);
    let reads = 0;
    try {
      const client = new GitHubClient({
        apiUrl: stringOption(values, "github-api-url") ?? DEFAULT_GITHUB_API_URL,
        token: token.trim(),
        transport: http.transport,
        redactor: secrets,
        signal: io.signal,
        onRequest: (method) => {
          if (method === "GET") reads++;
        },
      });
      const branch = stringOption(values, "branch");
      const treePath = stringOption(values, "thin-manifest-dir") ?? DEFAULT_TREE;
      const result = await openPromotionPullRequest({
        client,
        upstream,
        ...(fork === undefined ? {} : { forkOwner: fork.owner, forkName: fork.name }),
        treePath,
        project,
        image,
        tags,
        ...(digest === undefined ? {} : { digest }),
        reviewers: stringListOption(values, "reviewers"),
        ...(branch === undefined ? {} : { branch }),
        dryRun,
        commandLine: commandLine(values),
        signal: io.signal,
        edit: async (dir) => {
          try {
            return await addToManifest({
              thinManifestDir: dir,
              project,
              image,
              tags,
              ...(digest === undefined ? {} : { digest }),
              provider,
              cwd: dir,
              signal: io.signal,
              dryRun: true,
              registryPolicy: await registryPolicyFromOptions(
                values,
                { ...io, cwd: dir },
                { thinManifestDir: dir },
              ),
            });
          } catch (error) {
            // The tree is a temporary copy: name its files as they are in the repository.
            if (error instanceof Error)
              error.message = error.message.replaceAll(`${dir}${path.sep}`, `${treePath}/`);
            throw error;
          }
        },
      });
      render(io, result, reads);
      return ExitCode.ok;
    } catch (error) {
      if (error instanceof ManifestAddRefusedError) {
        writeLine(io.stderr, `promoter pr: ${error.message}`);
        return ExitCode.failed;
      }
      if (error instanceof RefusedError) {
        writeLine(io.stderr, `promoter pr: refused: ${error.message}`);
        return ExitCode.failed;
      }
      if (error instanceof GitHubError && error.code === "github-rate-limited") {
        writeLine(io.stderr, `promoter pr: error[${error.code}]: ${error.message}`);
        return ExitCode.failed;
      }
      throw error;
    } finally {
      await Promise.all([provider.close(), http.close()]);
    }
  },
};

function render(io: CliIO, result: PromotionPullRequest, reads: number): void {
  const out = (text: string) => {
    writeLine(io.stdout, text);
  };
  const upstream = formatRepoName(result.upstream);
  if (result.outcome === "nothing-to-do") {
    for (const addition of result.edit.additions) {
      const tags = addition.tags.length > 0 ? ` with ${addition.tags.join(", ")}` : "";
      out(
        `${upstream} ${result.file} already lists ${addition.image}@${addition.digest}${tags} on ${result.defaultBranch}; nothing to do`,
      );
    }
    return;
  }
  const fork = formatRepoName(result.fork);
  out(`upstream: ${upstream} ${result.defaultBranch} at ${result.baseCommit.slice(0, 12)}`);
  out(
    `fork: ${fork}${result.forkExists ? "" : result.outcome === "dry-run" ? " (would be created)" : " (created)"}`,
  );
  out(`branch: ${fork}:${result.branch}${result.branchExists ? " (exists and carries the change)" : ""}`);
  out(`commit: ${result.title}${result.commit === undefined ? "" : ` (${result.commit.slice(0, 12)})`}`);
  for (const line of result.diff.split("\n")) out(`  ${line}`);
  if (result.outcome === "dry-run") {
    out(`dry run: ${reads} read requests sent; nothing written to GitHub`);
    if (result.writes.length === 0) out("would send: nothing (the pull request is open and complete)");
    else out("would send:");
    for (const write of result.writes) out(`  ${write.method} ${write.path}  (${write.purpose})`);
    if (result.pullRequest) out(`pull request: ${result.pullRequest.url} (already open)`);
    return;
  }
  if (result.pullRequest) {
    out(
      `pull request: ${result.pullRequest.url} (#${result.pullRequest.number}${result.pullRequest.existed ? ", already open" : ", opened"})`,
    );
  }
  if (result.reviewersRequested.length > 0) out(`reviews requested: ${result.reviewersRequested.join(", ")}`);
}

/** The command line that made the change, for the pull request's body (no secret is a flag). */
function commandLine(values: Readonly<Record<string, unknown>>): string {
  const parts = ["promoter pr"];
  for (const name of ["upstream", "fork", "thin-manifest-dir", "project", "image", "digest", "branch"]) {
    const value = values[name];
    if (typeof value === "string") parts.push(`--${name} ${value}`);
  }
  for (const name of ["tag", "reviewers"]) {
    const value = values[name];
    if (Array.isArray(value))
      for (const entry of value) if (typeof entry === "string") parts.push(`--${name} ${entry}`);
  }
  return parts.join(" ");
}
