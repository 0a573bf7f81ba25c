import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Redactor } from "../registry/index.js";
import { parseSigningKey } from "../sign/index.js";
import { addSigningKeySecrets } from "./signing-options.js";

describe("addSigningKeySecrets", () => {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const pkcs8 = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const sec1 = privateKey.export({ type: "sec1", format: "pem" }).toString();
  const key = parseSigningKey(pkcs8, "env://PROMOTER_SIGN_KEY");
  const base64Lines = (pem: string) => pem.split("\n").filter((line) => /^[A-Za-z0-9+/=]{16,}$/.test(line));

  it("registers the key as key files and variables hold it: DER base64 whole and as PEM lines", () => {
    const secrets = new Redactor();
    addSigningKeySecrets(secrets, key, "key.pem", {});
    for (const line of [...base64Lines(pkcs8), ...base64Lines(sec1)]) {
      expect(secrets.redact(`echo ${line} end`)).toBe("echo REDACTED end");
    }
    // The PEM armour is not a secret and stays readable.
    expect(secrets.redact("-----BEGIN PRIVATE KEY-----")).toBe("-----BEGIN PRIVATE KEY-----");
  });

  it("registers an env:// variable's text, also base64-wrapped as CI secret stores keep it", () => {
    const secrets = new Redactor();
    const wrapped = Buffer.from(pkcs8).toString("base64");
    addSigningKeySecrets(secrets, key, "env://PROMOTER_SIGN_KEY", { PROMOTER_SIGN_KEY: `${wrapped}\n` });
    expect(secrets.redact(`value ${wrapped}`)).toBe("value REDACTED");
  });
});
