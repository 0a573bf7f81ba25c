import { describe, expect, it } from "vitest";
import { appDesiredState } from "../../test/support/audit-state.js";
import type { RepositoryPath } from "../reference/index.js";
import type { PlaceVerification } from "../sign/index.js";
import type { RegistryEvent } from "./event.js";
import { TrustCache, type TrustPlace } from "./trust-cache.js";

const A = `sha256:${"a".repeat(64)}`;
const B = `sha256:${"b".repeat(64)}`;
const C = `sha256:${"c".repeat(64)}`;
const NOT_PROMOTED = `sha256:${"d".repeat(64)}`;
const PROD = "reg.example/prod/app";
const EU = "reg.example/eu/prod/app";

const state = appDesiredState({ [A]: ["1.0"], [B]: ["2.0"], [C]: [] }, { mirrors: ["eu/prod"] });

function verdict(signer: string): PlaceVerification {
  return {
    signature: { status: "valid", signers: [signer], reasons: [] },
    attestation: { status: "missing", signers: [], reasons: ["no attestation"], reviews: [] },
  };
}

/**
 * The registry behind the cache, scripted: each check waits until the test settles it, so how
 * many run at once and what a late answer does can be seen.
 */
class ScriptedVerifier {
  readonly asked: TrustPlace[] = [];
  inFlight = 0;
  mostInFlight = 0;
  private readonly waiting: { place: TrustPlace; settle: (result: PlaceVerification | Error) => void }[] = [];

  readonly verify = (place: TrustPlace): Promise<PlaceVerification> => {
    this.asked.push(place);
    this.inFlight += 1;
    this.mostInFlight = Math.max(this.mostInFlight, this.inFlight);
    return new Promise((resolve, reject) => {
      this.waiting.push({
        place,
        settle: (result) => {
          this.inFlight -= 1;
          if (result instanceof Error) reject(result);
          else resolve(result);
        },
      });
    });
  };

  get pending(): number {
    return this.waiting.length;
  }

  /** Answers the oldest waiting check (with `result`, default valid by "key-1"). */
  answerNext(result: PlaceVerification | Error = verdict("key-1")): TrustPlace {
    const next = this.waiting.shift();
    if (!next) throw new Error("no check waiting");
    next.settle(result);
    return next.place;
  }

  async answerAll(result?: PlaceVerification | Error): Promise<void> {
    while (this.waiting.length > 0) {
      this.answerNext(result);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

function cache(
  verifier: ScriptedVerifier,
  options: Partial<ConstructorParameters<typeof TrustCache>[0]> = {},
) {
  return new TrustCache({
    verify: verifier.verify,
    desiredState: () => state,
    now: () => Date.parse("2026-12-06T07:00:00Z"),
    ...options,
  });
}

function push(repository: string, fields: Partial<RegistryEvent> = {}): RegistryEvent {
  const [host = "", ...path] = repository.split("/");
  return {
    id: `distribution:${Math.random()}`,
    source: "distribution",
    action: "push",
    targetKind: "manifest",
    host,
    repository: path.join("/") as RepositoryPath,
    ...fields,
  };
}

describe("the status page's verification cache", () => {
  it("answers checking at once, verifies in the background, then answers from the cache", async () => {
    const verifier = new ScriptedVerifier();
    const trust = cache(verifier);
    expect(trust.lookup(PROD, A)).toEqual({ state: "checking" });
    expect(trust.lookup(PROD, A)).toEqual({ state: "checking" });
    expect(verifier.asked).toHaveLength(1);
    verifier.answerNext();
    await trust.idle();
    expect(trust.lookup(PROD, A)).toEqual({
      state: "known",
      checkedAt: "2026-12-06T07:00:00.000Z",
      result: verdict("key-1"),
    });
    expect(trust.checksStarted).toBe(1);
    // Only what the manifests promote there is checked.
    expect(trust.lookup(PROD, NOT_PROMOTED)).toBeUndefined();
    expect(trust.lookup("reg.example/elsewhere/app", A)).toBeUndefined();
    expect(trust.checksStarted).toBe(1);
  });

  it("checks each mirror against the image's canonical name, or --sign-identity's", async () => {
    const verifier = new ScriptedVerifier();
    cache(verifier).lookup(EU, A);
    cache(verifier, { identity: "vanity.example/{image}/x" }).lookup(EU, A);
    expect(verifier.asked.map((place) => [place.repository, place.identity])).toEqual([
      [EU, PROD],
      [EU, "vanity.example/app/x"],
    ]);
    await verifier.answerAll();
  });

  it("runs at most `concurrency` checks at once, queues at most `maxQueued`, newest ask first", async () => {
    const verifier = new ScriptedVerifier();
    const trust = cache(verifier, { concurrency: 2, maxQueued: 2 });
    for (const repository of [PROD, EU]) for (const digest of [A, B, C]) trust.lookup(repository, digest);
    expect(verifier.inFlight).toBe(2);
    expect(trust.queued).toBe(2);
    // The oldest waiting asks (PROD C, EU A) were dropped for the newer ones: not recorded.
    expect(trust.size).toBe(4);
    await verifier.answerAll();
    await trust.idle();
    expect(verifier.mostInFlight).toBe(2);
    expect(verifier.asked.map((place) => `${place.repository} ${place.digest}`)).toEqual([
      `${PROD} ${A}`,
      `${PROD} ${B}`,
      `${EU} ${C}`,
      `${EU} ${B}`,
    ]);
    expect(trust.lookup(PROD, C)).toEqual({ state: "checking" });
    await verifier.answerAll();
    await trust.idle();
    expect(trust.lookup(PROD, C)?.state).toBe("known");
  });

  it("keeps at most `maxEntries` verdicts, dropping the least recently asked", async () => {
    const verifier = new ScriptedVerifier();
    const trust = cache(verifier, { maxEntries: 2 });
    trust.lookup(PROD, A);
    trust.lookup(PROD, B);
    await verifier.answerAll();
    await trust.idle();
    trust.lookup(PROD, A); // A is now the most recently asked
    trust.lookup(PROD, C);
    expect(trust.size).toBe(2);
    await verifier.answerAll();
    await trust.idle();
    expect(trust.lookup(PROD, A)?.state).toBe("known");
    expect(trust.lookup(PROD, B)).toEqual({ state: "checking" });
    expect(trust.size).toBe(2);
    await verifier.answerAll();
  });

  it("drops a repository's verdicts on an event there and checks them again; other repositories keep theirs", async () => {
    const verifier = new ScriptedVerifier();
    const trust = cache(verifier);
    trust.lookup(PROD, A);
    trust.lookup(EU, A);
    await verifier.answerAll(verdict("key-1"));
    await trust.idle();
    // A new signature tag pushed into PROD: its verdicts are stale.
    trust.observe([
      push(PROD, { tag: `sha256-${"a".repeat(64)}.sig` as never, digest: NOT_PROMOTED as never }),
    ]);
    expect(trust.lookup(PROD, A)).toEqual({ state: "checking" });
    expect(trust.lookup(EU, A)?.state).toBe("known");
    expect(verifier.pending).toBe(1);
    await verifier.answerAll(verdict("key-2"));
    await trust.idle();
    const known = trust.lookup(PROD, A);
    expect(known?.state === "known" ? known.result.signature.signers : []).toEqual(["key-2"]);
  });

  it("keeps its verdicts through pulls and blob uploads (its own checks' reads are notified too)", async () => {
    const verifier = new ScriptedVerifier();
    const trust = cache(verifier);
    trust.lookup(PROD, A);
    await verifier.answerAll();
    await trust.idle();
    trust.observe([
      push(PROD, { action: "pull", digest: A as never }),
      push(PROD, { targetKind: "blob", digest: A as never }),
      push(PROD, { action: "mount", targetKind: "blob", digest: A as never }),
    ]);
    expect(trust.lookup(PROD, A)?.state).toBe("known");
    expect(trust.checksStarted).toBe(1);
  });

  it("throws away an answer that an event made stale while it ran", async () => {
    const verifier = new ScriptedVerifier();
    const trust = cache(verifier);
    trust.lookup(PROD, A);
    expect(verifier.pending).toBe(1);
    trust.observe([push(PROD, { action: "delete", digest: A as never })]);
    expect(verifier.pending).toBe(2);
    verifier.answerNext(verdict("before-the-event"));
    await new Promise((resolve) => setImmediate(resolve));
    expect(trust.lookup(PROD, A)).toEqual({ state: "checking" });
    verifier.answerNext(verdict("after-the-event"));
    await trust.idle();
    const known = trust.lookup(PROD, A);
    expect(known?.state === "known" ? known.result.signature.signers : []).toEqual(["after-the-event"]);
  });

  it("checks a pushed digest the manifests promote there before anyone asks", async () => {
    const verifier = new ScriptedVerifier();
    const trust = cache(verifier);
    trust.observe([
      push(EU, { digest: B as never, tag: "2.0" as never }),
      push(EU, { digest: NOT_PROMOTED as never }),
    ]);
    expect(verifier.asked.map((place) => [place.repository, place.digest])).toEqual([[EU, B]]);
    await verifier.answerAll();
    await trust.idle();
    expect(trust.lookup(EU, B)?.state).toBe("known");
  });

  it("records a failed check as unreadable, with the reason", async () => {
    const verifier = new ScriptedVerifier();
    const trust = cache(verifier);
    trust.lookup(PROD, A);
    verifier.answerNext(new Error("connection refused"));
    await trust.idle();
    const known = trust.lookup(PROD, A);
    expect(known?.state === "known" ? known.result : undefined).toMatchObject({
      signature: { status: "unreadable", reasons: ["connection refused"] },
      attestation: { status: "unreadable", reasons: ["connection refused"] },
    });
  });

  it("gives up on a registry that never answers, as unreadable, and frees the slot", async () => {
    const hanging = (_place: TrustPlace, signal: AbortSignal): Promise<PlaceVerification> =>
      new Promise((_resolve, reject) => {
        signal.addEventListener(
          "abort",
          () => {
            reject(new Error("aborted"));
          },
          { once: true },
        );
      });
    const trust = new TrustCache({
      verify: hanging,
      desiredState: () => state,
      timeoutMs: 1,
      concurrency: 1,
    });
    trust.lookup(PROD, A);
    trust.lookup(PROD, B);
    await trust.idle();
    for (const digest of [A, B]) {
      const known = trust.lookup(PROD, digest);
      expect(known?.state === "known" ? known.result.signature : undefined).toEqual({
        status: "unreadable",
        signers: [],
        reasons: ["the registry did not answer in time"],
      });
    }
  });

  it("starts nothing after close", () => {
    const verifier = new ScriptedVerifier();
    const trust = cache(verifier);
    trust.close();
    expect(trust.lookup(PROD, A)).toEqual({ state: "checking" });
    expect(verifier.asked).toHaveLength(0);
  });

  it("checks a verdict again once it is older than maxAgeMs: no event may ever say the signature changed", async () => {
    const verifier = new ScriptedVerifier();
    let clock = Date.parse("2026-12-06T07:00:00Z");
    const trust = cache(verifier, { now: () => clock, maxAgeMs: 600_000 });
    trust.lookup(PROD, A);
    verifier.answerNext();
    await trust.idle();
    clock += 599_999;
    expect(trust.lookup(PROD, A)).toMatchObject({ state: "known", result: verdict("key-1") });
    expect(trust.checksStarted).toBe(1);
    // The mirror's signature was replaced and no event came: the old "valid" is not shown again.
    clock += 1;
    expect(trust.lookup(PROD, A)).toEqual({ state: "checking" });
    expect(trust.checksStarted).toBe(2);
    verifier.answerNext({
      signature: { status: "invalid", signers: [], reasons: ["another key"] },
      attestation: { status: "missing", signers: [], reasons: [], reviews: [] },
    });
    await trust.idle();
    expect(trust.lookup(PROD, A)).toMatchObject({
      state: "known",
      checkedAt: new Date(clock).toISOString(),
      result: { signature: { status: "invalid" } },
    });
  });
});
