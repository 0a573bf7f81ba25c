import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { Writable } from "node:stream";
import { describeError, errnoCode, UsageError } from "../errors.js";
import { ENCODED_SECRET_FORMS, guardedOutput } from "../output/encode.js";
import {
  credentialFromEntry,
  parseAuthDocument,
  Redactor,
  redactText,
  REGISTRY_AUTH_VARIABLE,
} from "../registry/index.js";
import { IDENTITY_TOKEN_VARIABLE, SIGN_KEY_PASSWORD_VARIABLE } from "../sign/index.js";
import type { CliIO, OutputStream } from "./io.js";

/**
 * The choke points of a run's output. Every byte a command prints goes through the run's
 * guarded stdout and stderr, and every file it writes through `writeOutputFile`: there the known
 * secrets of the run are removed (in every encoded form a sink gives them) and the text is
 * guarded (`guardedOutput`: no control sequence, no invisible character, no CI runner command),
 * whatever the renderer did. Renderers still encode each outside value for its sink
 * (src/output/encode.ts); this is what a forgotten encoder cannot get past.
 */

/**
 * `PROMOTER_AUTH_<HOST>=username:password` (see `registryAuthVariable`): every such variable holds
 * a secret the run may send, whether or not it contacts that registry.
 */
export const REGISTRY_AUTH_VARIABLE_PREFIX = "PROMOTER_AUTH_";

/**
 * Registers the secrets the environment hands the run: registry passwords and tokens
 * (`PROMOTER_AUTH_*`, `PROMOTER_REGISTRY_AUTH`), the signing key's password and the keyless
 * identity token. Credentials from files (docker config, auth.json, helpers) and tokens obtained
 * at run time are registered by the registry client when it uses them, which is before any
 * registry can echo them.
 */
export function addEnvironmentSecrets(secrets: Redactor, env: CliIO["env"]): void {
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || value === "" || !name.startsWith(REGISTRY_AUTH_VARIABLE_PREFIX)) continue;
    const colon = value.indexOf(":");
    if (colon > 0) secrets.addBasic(value.slice(0, colon), value.slice(colon + 1));
    else secrets.add(value);
  }
  const document = env[REGISTRY_AUTH_VARIABLE];
  if (document !== undefined && document.trim() !== "") {
    try {
      for (const entry of parseAuthDocument(document, `$${REGISTRY_AUTH_VARIABLE}`).auths.values()) {
        secrets.add(entry.auth);
        const credential = credentialFromEntry(entry, REGISTRY_AUTH_VARIABLE);
        if (credential) secrets.addCredential(credential);
      }
    } catch {
      // Not JSON: the registry client says so when it needs the variable. Nothing to learn here.
    }
  }
  secrets.add(env[SIGN_KEY_PASSWORD_VARIABLE]);
  secrets.add(env[IDENTITY_TOKEN_VARIABLE]);
}

/** A stream that removes known secrets and guards every chunk before passing it on. */
class GuardedStream extends Writable {
  constructor(
    private readonly target: OutputStream,
    private readonly secrets: Redactor,
  ) {
    // Strings stay strings: the guard works on text, and a chunk is passed on as it arrives, so
    // output keeps its order with whatever else writes to the same stream.
    super({ decodeStrings: false });
  }

  get isTTY(): boolean | undefined {
    return this.target.isTTY;
  }

  get columns(): number | undefined {
    return this.target.columns;
  }

  override _write(
    chunk: string | Uint8Array,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    this.target.write(guardedOutput(this.secrets.redact(text), { terminal: this.target.isTTY === true }));
    callback();
  }
}

/** The secrets of a run: the environment's, and whatever its registry clients and signers add. */
export function createRunSecrets(env: CliIO["env"]): Redactor {
  const secrets = new Redactor({ encodings: ENCODED_SECRET_FORMS });
  addEnvironmentSecrets(secrets, env);
  return secrets;
}

/**
 * The IO a command runs with: the process's, with the run's secrets and guarded stdout and
 * stderr. `runCli` makes it once per run; commands never see the raw streams.
 */
export function guardedRunIO(io: CliIO): CliIO & { readonly secrets: Redactor } {
  const secrets = io.secrets ?? createRunSecrets(io.env);
  return {
    ...io,
    secrets,
    stdout: new GuardedStream(io.stdout, secrets),
    stderr: new GuardedStream(io.stderr, secrets),
  };
}

/**
 * Writes (or appends to) a file a command produces for people or programs (reports, plans, the
 * CI job summary), through the same guard as stdout: no known secret, no control sequence, no
 * runner command. Written only where its name says: a symbolic link there (one a pull request
 * committed at `report.json` in the checkout CI runs in, say) is refused rather than followed to
 * whatever file it names, and so is a FIFO without a reader. A file that cannot be written is a
 * usage error naming it (exit status 2).
 */
export async function writeOutputFile(
  io: Pick<CliIO, "secrets">,
  file: string,
  text: string,
  options: { append?: boolean } = {},
): Promise<void> {
  const redacted = io.secrets ? io.secrets.redact(text) : redactText(text);
  const guarded = guardedOutput(redacted, { terminal: false });
  const flags =
    constants.O_WRONLY |
    constants.O_CREAT |
    constants.O_NOFOLLOW |
    constants.O_NONBLOCK |
    (options.append ? constants.O_APPEND : constants.O_TRUNC);
  try {
    const handle = await open(file, flags, 0o666);
    try {
      await handle.writeFile(guarded);
    } finally {
      await handle.close();
    }
  } catch (error) {
    const code = errnoCode(error);
    // Linux says ELOOP for a symbolic link opened with O_NOFOLLOW; some BSDs say EMLINK.
    const reason =
      code === "ELOOP" || code === "EMLINK"
        ? "it is a symbolic link; an output file is written only where its name says"
        : describeError(error);
    throw new UsageError(`cannot write ${file}: ${reason}`, { cause: error });
  }
}
