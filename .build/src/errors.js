/**
 * The one error base of the project. Every error the library raises on purpose is a
 * `PromoterError` with a stable, machine-readable `code`; callers branch on `code`, people read
 * `message`. Messages never contain secrets: anything that may carry a credential goes through
 * `registry/redact` before it reaches an error.
 */
export class PromoterError extends Error {
    code;
    constructor(code, message, options) {
        super(message, options);
        this.name = new.target.name;
        this.code = code;
    }
}
/** Bad input from the person running the tool (flags, missing files): exit status 2. */
export class UsageError extends PromoterError {
    constructor(message, options) {
        super("usage", message, options);
    }
}
/** A string that does not follow one of the name grammars (digest, tag, repository, reference). */
export class InvalidNameError extends PromoterError {
    kind;
    input;
    constructor(kind, input, reason) {
        super(`invalid-${kind}`, `invalid ${kind} ${JSON.stringify(truncateForMessage(input))}: ${reason}`);
        this.kind = kind;
        this.input = input;
    }
}
/** Signals that work was stopped on purpose (Ctrl-C, SIGTERM, a deadline). */
export class AbortedError extends PromoterError {
    constructor(message = "operation aborted", options) {
        super("aborted", message, options);
    }
}
export function isPromoterError(error) {
    return error instanceof PromoterError;
}
/** Long inputs would flood a terminal; keep the start, which is what a person recognises. */
export function truncateForMessage(text, max = 200) {
    return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}
/** A message for any thrown value, without assuming it is an Error. */
export function describeError(error) {
    if (error instanceof Error)
        return error.message;
    return String(error);
}
//# sourceMappingURL=errors.js.map