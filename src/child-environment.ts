/**
 * The environments of the programs the promoter runs (git, credential helpers) are built from
 * allow-lists, never inherited: the promoter's own secrets (PROMOTER_*, signing keys, CI tokens)
 * stay in the promoter. Pure.
 */

/**
 * What a child that talks to the network needs to get there the way the promoter does: proxies
 * (both spellings: curl reads the lower-case ones, most Go programs both) and CA bundles
 * (https://curl.se/docs/manpage.html#ENVIRONMENT).
 */
export const NETWORK_VARIABLES: readonly string[] = [
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
  "ALL_PROXY",
  "http_proxy",
  "https_proxy",
  "no_proxy",
  "all_proxy",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
];

/** The variables of `parent` that `wanted` accepts, and only those that are set. */
export function pickEnvironment(
  parent: Readonly<Record<string, string | undefined>>,
  wanted: (name: string) => boolean,
): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const [name, value] of Object.entries(parent)) {
    if (value !== undefined && wanted(name)) picked[name] = value;
  }
  return picked;
}
