/** The one hardened runner of the `git` program, shared by the GitOps checks and the auditor. */
export {
  GIT_TIMEOUT_MS,
  GitCommandError,
  gitEnvironment,
  gitGlobalOptions,
  runGitProcess,
  type GitProcessRequest,
  type GitRepository,
} from "./process.js";
