import { describe, expect, it } from "vitest";
import { MemoryLogger } from "../log.js";
import { REDACTED, Redactor, redactText, redactUrl, redactingLogger } from "./redact.js";

describe("redactUrl", () => {
  it("removes signatures of S3, GCS and Azure storage URLs but keeps the distribution parameters", () => {
    const s3 =
      "https://bucket.s3.amazonaws.com/docker/blobs/sha256/ab/data?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20250101&X-Amz-Signature=deadbeef1234&X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLE";
    const redacted = redactUrl(s3);
    expect(redacted).not.toContain("deadbeef1234");
    expect(redacted).not.toContain("AKIAEXAMPLE");
    expect(redacted).not.toContain("FwoGZXIvYXdzEXAMPLE");
    expect(redacted).toContain("X-Amz-Signature=REDACTED");
    expect(redactUrl("https://x.blob.core.windows.net/c/b?sv=2020&sig=abc%2Fdef&se=2030")).toBe(
      "https://x.blob.core.windows.net/c/b?sv=REDACTED&sig=REDACTED&se=REDACTED",
    );
    expect(redactUrl("https://r.example/v2/a/b/tags/list?n=100&last=v1")).toBe(
      "https://r.example/v2/a/b/tags/list?n=100&last=v1",
    );
    expect(redactUrl("https://auth.example/token?service=reg&scope=repository:a/b:pull,push&token=t0k")).toBe(
      "https://auth.example/token?service=reg&scope=repository:a/b:pull,push&token=REDACTED",
    );
  });

  it("drops user info and fragments", () => {
    expect(redactUrl("https://user:hunter2@r.example/v2/#frag")).toBe("https://r.example/v2/");
  });

  it("redacts distribution's upload _state", () => {
    expect(redactUrl("http://127.0.0.1:5000/v2/a/blobs/uploads/uuid?_state=eyJuYW1lIjoiYSJ9")).toBe(
      "http://127.0.0.1:5000/v2/a/blobs/uploads/uuid?_state=REDACTED",
    );
  });
});

describe("Redactor", () => {
  it("also finds each secret in the forms the output encodings give it", () => {
    const redactor = new Redactor({ encodings: [(secret) => secret.replace(/_/g, "\\_")] });
    redactor.add("pass_word_0123");
    expect(redactor.redact("raw pass_word_0123 and escaped pass\\_word\\_0123")).toBe(
      "raw REDACTED and escaped REDACTED",
    );
  });

  it("is idempotent: output sinks redact messages that were redacted when they were made", () => {
    const redactor = new Redactor();
    redactor.addBasic("alice", "correct-horse-battery");
    const message = `refusing upload Location (${redactUrl("http://x/upload/1?_state=abc&sig=def")}); uploads stay`;
    const text = `${message}; Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln https://alice:correct-horse-battery@r.example/ {"token": "t0k"} ?sig=x y`;
    const once = redactor.redact(text);
    expect(once).toContain("?_state=REDACTED&sig=REDACTED); uploads stay;");
    expect(redactor.redact(once)).toBe(once);
  });

  it("registers the secret of any kind of credential", () => {
    const redactor = new Redactor();
    redactor.addCredential({ kind: "basic", username: "u", password: "pw-0123456789", source: "x" });
    redactor.addCredential({
      kind: "identity-token",
      username: "u",
      identityToken: "idt-0123456789",
      source: "x",
    });
    redactor.addCredential({ kind: "registry-token", token: "rt-0123456789", source: "x" });
    expect(redactor.redact("pw-0123456789 idt-0123456789 rt-0123456789")).toBe("REDACTED REDACTED REDACTED");
  });

  it("removes registered secrets, their base64 and Basic forms, and credential patterns", () => {
    const redactor = new Redactor();
    redactor.addBasic("alice", "correct-horse-battery");
    redactor.add("tok-0123456789");
    const basic = Buffer.from("alice:correct-horse-battery").toString("base64");
    const text = [
      "password correct-horse-battery",
      `Authorization: Basic ${basic}`,
      `raw ${basic}`,
      "token tok-0123456789",
      "Bearer abc.def.ghi",
      "jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
      '{"token":"zzz-zzz","refresh_token":"r-r-r"}',
      "url https://a:b@host/path?sig=xyz",
    ].join("\n");
    const result = redactor.redact(text);
    for (const secret of [
      "correct-horse-battery",
      basic,
      "tok-0123456789",
      "abc.def.ghi",
      "c2lnbmF0dXJl",
      "zzz-zzz",
      "r-r-r",
      "xyz",
      "a:b@",
    ]) {
      expect(result).not.toContain(secret);
    }
    expect(result).toContain(REDACTED);
  });

  it("ignores secrets too short to search for", () => {
    const redactor = new Redactor();
    redactor.add("ab");
    expect(redactor.redact("abc ab")).toBe("abc ab");
  });

  it("redacts every log line and field", () => {
    const redactor = new Redactor();
    redactor.add("sekrit-value");
    const memory = new MemoryLogger();
    const logger = redactingLogger(memory, redactor);
    logger.log("info", "got sekrit-value", {
      nested: { url: new URL("https://h/p?X-Amz-Signature=s1g"), list: ["sekrit-value"] },
    });
    expect(JSON.stringify(memory.lines)).not.toMatch(/sekrit-value|s1g/);
  });

  it("redactText works without a Redactor", () => {
    expect(redactText("Authorization: Bearer abcdef")).toBe("Authorization: Bearer REDACTED");
  });
});
