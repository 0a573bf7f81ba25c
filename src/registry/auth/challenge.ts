/**
 * `WWW-Authenticate` challenges (RFC 9110 section 11.6.1), as registries send them:
 *   Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a:pull"
 *   Basic realm="Registry Realm"
 * A header may hold several challenges and may repeat.
 * https://distribution.github.io/distribution/spec/auth/token/
 */
export interface Challenge {
  /** Lower case: `bearer`, `basic`. */
  readonly scheme: string;
  /** Parameter names in lower case. */
  readonly params: Readonly<Record<string, string>>;
}

const TOKEN_CHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

export function parseChallenges(headerValues: readonly string[]): Challenge[] {
  const challenges: { scheme: string; params: Record<string, string> }[] = [];
  for (const value of headerValues) {
    let i = 0;
    let current: { scheme: string; params: Record<string, string> } | undefined;
    const skip = (pattern: RegExp) => {
      while (i < value.length && pattern.test(value.charAt(i))) i++;
    };
    const readToken = (): string => {
      const start = i;
      while (i < value.length && TOKEN_CHAR.test(value.charAt(i))) i++;
      return value.slice(start, i);
    };
    while (i < value.length) {
      skip(/[\s,]/);
      const token = readToken();
      if (token.length === 0) {
        i++;
        continue;
      }
      skip(/[ \t]/);
      if (value.charAt(i) === "=" && current) {
        i++;
        skip(/[ \t]/);
        let parameter = "";
        if (value.charAt(i) === '"') {
          i++;
          while (i < value.length && value.charAt(i) !== '"') {
            if (value.charAt(i) === "\\" && i + 1 < value.length) i++;
            parameter += value.charAt(i);
            i++;
          }
          i++;
        } else {
          const start = i;
          while (i < value.length && !/[\s,]/.test(value.charAt(i))) i++;
          parameter = value.slice(start, i);
        }
        current.params[token.toLowerCase()] = parameter;
      } else if (value.charAt(i) === "=") {
        // A parameter before any scheme: not a challenge.
        i++;
      } else {
        current = { scheme: token.toLowerCase(), params: {} };
        challenges.push(current);
      }
    }
  }
  return challenges;
}

/** The challenge to answer: Bearer (with a realm) before Basic; others are not supported. */
export function preferredChallenge(challenges: readonly Challenge[]): Challenge | undefined {
  const bearer = challenges.find((challenge) => challenge.scheme === "bearer" && challenge.params.realm);
  return bearer ?? challenges.find((challenge) => challenge.scheme === "basic");
}
