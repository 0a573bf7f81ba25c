import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SignError } from "./errors.js";
import { loadSigningKey, loadVerificationKey, parseSigningKey, parseVerificationKey } from "./keys.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "sign-keys-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const p256 = generateKeyPairSync("ec", { namedCurve: "P-256" });
const pkcs8 = p256.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const sec1 = p256.privateKey.export({ type: "sec1", format: "pem" }).toString();
const spki = p256.publicKey.export({ type: "spki", format: "pem" }).toString();
const encrypted = p256.privateKey
  .export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "s3cret" })
  .toString();

/** Every error message must be free of key material. */
function expectNoKeyMaterial(error: unknown): void {
  const message = (error as Error).message;
  for (const pem of [pkcs8, sec1, spki]) {
    const body = pem.split("\n")[1] ?? "";
    expect(message).not.toContain(body.slice(0, 20));
  }
}

async function failure(work: () => unknown): Promise<SignError> {
  try {
    await work();
  } catch (error) {
    expect(error).toBeInstanceOf(SignError);
    expect((error as SignError).code).toBe("sign-key");
    expectNoKeyMaterial(error);
    return error as SignError;
  }
  throw new Error("expected a failure");
}

describe("signing keys", () => {
  it("reads PKCS#8, SEC1 and encrypted PKCS#8 keys to the same key", () => {
    const a = parseSigningKey(pkcs8, "a.pem");
    const b = parseSigningKey(sec1, "b.pem");
    const c = parseSigningKey(encrypted, "c.pem", "s3cret");
    expect(a.keyId).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(b.keyId).toBe(a.keyId);
    expect(c.keyId).toBe(a.keyId);
    expect(parseVerificationKey(spki, "pub.pem").keyId).toBe(a.keyId);
  });

  it("accepts OpenSSL's output with EC PARAMETERS first", () => {
    const withParams = `-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n${sec1}`;
    expect(parseSigningKey(withParams, "k.pem").keyId).toBe(parseSigningKey(pkcs8, "k.pem").keyId);
  });

  it("reads a key from an environment variable, as PEM or base64 of PEM", async () => {
    const env = { PROMOTER_SIGN_KEY: pkcs8, B64: Buffer.from(pkcs8).toString("base64") };
    const fromPem = await loadSigningKey("env://PROMOTER_SIGN_KEY", { env });
    const fromBase64 = await loadSigningKey("env://B64", { env });
    expect(fromPem.source).toBe("env://PROMOTER_SIGN_KEY");
    expect(fromBase64.keyId).toBe(fromPem.keyId);
    expect((await failure(() => loadSigningKey("env://MISSING", { env }))).message).toMatch(
      /MISSING is not set/,
    );
  });

  it("takes the password of an encrypted key from PROMOTER_SIGN_KEY_PASSWORD", async () => {
    const file = path.join(dir, "encrypted.pem");
    await writeFile(file, encrypted);
    const key = await loadSigningKey(file, { env: { PROMOTER_SIGN_KEY_PASSWORD: "s3cret" } });
    expect(key.source).toBe(file);
    expect((await failure(() => loadSigningKey(file, { env: {} }))).message).toMatch(
      /encrypted.*PROMOTER_SIGN_KEY_PASSWORD/,
    );
    expect(
      (await failure(() => loadSigningKey(file, { env: { PROMOTER_SIGN_KEY_PASSWORD: "wrong" } }))).message,
    ).toMatch(/cannot be decrypted/);
  });

  it("says what is wrong with unusable keys, without key material", async () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 })
      .privateKey.export({ type: "pkcs8", format: "pem" })
      .toString();
    const p384 = generateKeyPairSync("ec", { namedCurve: "P-384" })
      .privateKey.export({ type: "pkcs8", format: "pem" })
      .toString();
    expect((await failure(() => parseSigningKey(rsa, "rsa.pem"))).message).toMatch(
      /cannot use key rsa\.pem: it is a rsa key/,
    );
    expect((await failure(() => parseSigningKey(p384, "p384.pem"))).message).toMatch(/secp384r1; P-256/);
    expect((await failure(() => parseSigningKey(spki, "pub.pem"))).message).toMatch(/holds a public key/);
    expect((await failure(() => parseVerificationKey(pkcs8, "priv.pem"))).message).toMatch(
      /holds a private key/,
    );
    expect((await failure(() => parseSigningKey("hello", "x.pem"))).message).toMatch(/no PEM block/);
    const cosignEncrypted =
      "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n";
    expect((await failure(() => parseSigningKey(cosignEncrypted, "cosign.key"))).message).toMatch(
      /scrypt \+ secretbox/,
    );
    const damaged = pkcs8.replace(/\n[A-Za-z0-9+/]{10}/, "\nAAAAAAAAAA");
    expect((await failure(() => parseSigningKey(damaged, "damaged.pem"))).message).toMatch(
      /cannot be parsed|P-256|key/,
    );
    expect((await failure(() => loadSigningKey(path.join(dir, "absent.pem")))).message).toMatch(
      /no such file/,
    );
    expect((await failure(() => loadSigningKey(dir))).message).toMatch(/directory|not a regular file/);
    const big = path.join(dir, "big.pem");
    await writeFile(big, Buffer.alloc(70_000, 65));
    expect((await failure(() => loadSigningKey(big))).message).toMatch(/larger than/);
    expect((await failure(() => loadVerificationKey("env://1BAD"))).message).toMatch(/variable name/);
  });
});

describe("a key given where a file name belongs", () => {
  it("is refused without being shown, not even inside the file-system error", async () => {
    const pem = generateKeyPairSync("ec", { namedCurve: "P-256" })
      .privateKey.export({ type: "pkcs8", format: "pem" })
      .toString();
    const error = await loadSigningKey(pem, { cwd: tmpdir() }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SignError);
    const message = (error as SignError).message;
    expect(message).toMatch(/not shown: it looks like key material/);
    expect(message).not.toContain("BEGIN");
    for (const line of pem.split("\n").filter((text) => text.length > 20))
      expect(message).not.toContain(line);
  });
});
