import { spawn } from "node:child_process";
import { AbortedError, PromoterError } from "../errors.js";
import { NETWORK_VARIABLES, pickEnvironment } from "../child-environment.js";

/**
 * The one way the promoter runs the `git` program (the GitOps checks read the pull request's
 * repository; the auditor clones and fetches the manifests). The files git works on may come
 * from an attacker (a pull request's tree), so git is started in a closed configuration:
 *
 * - the repository is named (`--git-dir`, `--work-tree`) whenever it is known, and the one
 *   search for it refuses repositories nobody named (`safe.bareRepository=explicit`): a folder of
 *   a checkout that looks like a git directory is never taken for one
 *   (https://git-scm.com/docs/git-config#Documentation/git-config.txt-safebareRepository);
 * - replace refs and lazy fetches of missing objects are off (`--no-replace-objects`,
 *   `GIT_NO_REPLACE_OBJECTS`, `GIT_NO_LAZY_FETCH`), and so is every transport for commands
 *   that read local data (`protocol.allow=never`), so no configuration can start a fetch;
 * - hooks, fsmonitor and pathspec magic are off, prompts and pagers too;
 * - the environment is built, not inherited: the program search path and the user's own git
 *   configuration (HOME, XDG_CONFIG_HOME), plus for network commands the SSH agent, proxies and
 *   CA bundles. Registry credentials, signing keys and every GIT_* override of the caller's
 *   environment (GIT_DIR, GIT_CONFIG_*, GIT_SSH_COMMAND...) stay out
 *   (https://git-scm.com/docs/git#_environment_variables).
 */

/** One git command may take this long (a first clone of a large repository included). */
export const GIT_TIMEOUT_MS = 5 * 60_000;
/** Error text kept from git's stderr. */
const MAX_GIT_STDERR_CHARS = 4000;
/** Lines of git's stderr quoted in an error message. */
const STDERR_LINES_IN_MESSAGE = 3;

/** A git command failed, or git is missing (exit status 2 in the CLI: the input is wrong). */
export class GitCommandError extends PromoterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("git", message, options);
  }
}

/** A repository located once, then named to every git command. */
export interface GitRepository {
  /** Absolute path of the git directory (`.git`, or what a `.git` file of a worktree names). */
  readonly gitDir: string;
  /** Absolute path of the top of the work tree. */
  readonly workTree: string;
}

export interface GitProcessRequest {
  /** The git command and its arguments (`["ls-tree", ...]`), after git's own options. */
  readonly args: readonly string[];
  /** The repository; without it git searches from `cwd` (only to locate one, or to clone). */
  readonly repository?: GitRepository;
  /** Working directory (default: the work tree of `repository`). */
  readonly cwd?: string;
  /** "none": every transport refused (local reads); "remote": clone and fetch from a URL. */
  readonly network: "none" | "remote";
  /** Standard input (e.g. object ids for `cat-file --batch`). */
  readonly input?: string;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
  /** Output kept; more is an error. */
  readonly maxOutputBytes: number;
  /** The git program (default `git` from PATH). */
  readonly program?: string;
  /** Applied to git's stderr before it goes into an error (a URL's credentials). */
  readonly redact?: (text: string) => string;
  /**
   * Configuration that must stay off the command line (an `http.<origin>.extraHeader` carrying a
   * credential: argv is readable by every local user in /proc/<pid>/cmdline). Given to git through
   * its environment (GIT_CONFIG_COUNT, git 2.31 or later; https://git-scm.com/docs/git-config#ENVIRONMENT).
   */
  readonly privateConfig?: readonly (readonly [key: string, value: string])[];
}

/** Variables of the caller's environment that git may see: finding programs and the user's config. */
const LOCAL_VARIABLES = ["PATH", "HOME", "XDG_CONFIG_HOME", "TMPDIR"] as const;
/** And for clone and fetch: the SSH agent, and the proxies and CA bundles the network needs. */
const REMOTE_VARIABLES = ["SSH_AUTH_SOCK", ...NETWORK_VARIABLES] as const;

/** The environment of a git child: only what it needs, and git's safety switches. */
export function gitEnvironment(
  parent: Readonly<Record<string, string | undefined>>,
  network: GitProcessRequest["network"],
  privateConfig: GitProcessRequest["privateConfig"] = [],
): Record<string, string> {
  const names: ReadonlySet<string> = new Set(
    network === "remote" ? [...LOCAL_VARIABLES, ...REMOTE_VARIABLES] : LOCAL_VARIABLES,
  );
  const environment = pickEnvironment(parent, (name) => names.has(name));
  if (privateConfig.length > 0) {
    environment.GIT_CONFIG_COUNT = String(privateConfig.length);
    privateConfig.forEach(([key, value], index) => {
      environment[`GIT_CONFIG_KEY_${index}`] = key;
      environment[`GIT_CONFIG_VALUE_${index}`] = value;
    });
  }
  return {
    ...environment,
    LC_ALL: "C",
    // Never ask for credentials or open an editor or a pager: nobody is there to answer.
    GIT_TERMINAL_PROMPT: "0",
    GIT_ASKPASS: "",
    SSH_ASKPASS: "",
    GIT_PAGER: "cat",
    GIT_EDITOR: "true",
    GIT_OPTIONAL_LOCKS: "0",
    GIT_NO_REPLACE_OBJECTS: "1",
    // git 2.44+: a missing object is an error, never a fetch from a promisor remote.
    GIT_NO_LAZY_FETCH: "1",
    GIT_LITERAL_PATHSPECS: "1",
    // A tree's .gitattributes may name the LFS filter, and its .lfsconfig the server LFS fetches
    // from with the user's credential helpers: the auditor's checkout keeps the pointer files.
    GIT_LFS_SKIP_SMUDGE: "1",
  };
}

/** git's own options before the command: the closed configuration described above. */
export function gitGlobalOptions(request: Pick<GitProcessRequest, "repository" | "network">): string[] {
  const config = [
    "safe.bareRepository=explicit",
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "submodule.recurse=false",
    "fetch.recurseSubmodules=false",
    "protocol.ext.allow=never",
    ...(request.network === "none" ? ["protocol.allow=never"] : []),
  ];
  return [
    "--no-replace-objects",
    "--literal-pathspecs",
    ...config.flatMap((setting) => ["-c", setting]),
    ...(request.repository
      ? [`--git-dir=${request.repository.gitDir}`, `--work-tree=${request.repository.workTree}`]
      : []),
  ];
}

/** Runs git and resolves with its stdout; rejects with GitCommandError on a non-zero exit. */
export function runGitProcess(request: GitProcessRequest): Promise<Buffer> {
  const { args, signal } = request;
  const command = args[0] ?? "";
  const redact = request.redact ?? ((text: string) => text);
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new AbortedError("git was not started: aborted"));
      return;
    }
    const cwd = request.cwd ?? request.repository?.workTree;
    const child = spawn(request.program ?? "git", [...gitGlobalOptions(request), ...args], {
      ...(cwd === undefined ? {} : { cwd }),
      stdio: ["pipe", "pipe", "pipe"],
      env: gitEnvironment(process.env, request.network, request.privateConfig),
      ...(signal ? { signal } : {}),
    });
    const chunks: Buffer[] = [];
    let size = 0;
    let stderr = "";
    let settled = false;
    const settle = (error: Error | undefined, output?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(output ?? Buffer.alloc(0));
    };
    const timeoutMs = request.timeoutMs ?? GIT_TIMEOUT_MS;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      settle(new GitCommandError(`git ${command} did not finish in ${Math.round(timeoutMs / 1000)} s`));
    }, timeoutMs);
    timer.unref();
    child.stdout.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > request.maxOutputBytes) {
        child.kill();
        settle(new GitCommandError(`git ${command} printed more than ${request.maxOutputBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      if (stderr.length < MAX_GIT_STDERR_CHARS) stderr += chunk.toString("utf8");
    });
    child.on("error", (error) => {
      if (signal?.aborted) settle(new AbortedError("git was aborted", { cause: error }));
      else settle(new GitCommandError(`cannot run git: ${error.message}`, { cause: error }));
    });
    child.on("close", (code) => {
      if (code === 0) {
        settle(undefined, Buffer.concat(chunks));
        return;
      }
      const reason = redact(stderr.trim()).split("\n").slice(0, STDERR_LINES_IN_MESSAGE).join("; ");
      settle(
        new GitCommandError(`git ${command} failed (exit ${code ?? "killed"})${reason ? `: ${reason}` : ""}`),
      );
    });
    child.stdin.on("error", () => {
      // git may exit before reading all input (it reports the reason on stderr).
    });
    child.stdin.end(request.input ?? "");
  });
}
