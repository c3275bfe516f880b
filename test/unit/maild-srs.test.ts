import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { Srs, isSrsLocalPart } from "../../server-bootstrap/maild/srs";

// postsrsd tests/unit/test_srs2.c (roehling/postsrsd ad76f54): faketime 1577836860, secret "tops3cr3t".
const POSTSRSD_TIME_MS = 1577836860_000;
const DAY = 86_400_000;

function srsAt(ms: number, secrets = ["tops3cr3t"], maxAgeDays?: number): Srs {
  return new Srs({ secrets, now: () => ms, ...(maxAgeDays !== undefined ? { maxAgeDays } : {}) });
}

describe("SRS (Shevek's scheme as postsrsd writes it)", () => {
  test("SRS0 for a forwarded sender matches postsrsd's own test vector", () => {
    assert.equal(srsAt(POSTSRSD_TIME_MS).forward("test@otherdomain.com", "example.com"), "SRS0=vmyz=2W=otherdomain.com=test@example.com");
  });

  test("an SRS0 address we made leads back to the original sender", () => {
    const srs = srsAt(POSTSRSD_TIME_MS);
    assert.deepEqual(srs.reverse("SRS0=vmyz=2W=otherdomain.com=test@example.com"), { ok: true, address: "test@otherdomain.com" });
  });

  test("a local part with = and + survives the round trip", () => {
    const srs = srsAt(POSTSRSD_TIME_MS);
    const fwd = srs.forward("a=b+c@Other.Example", "example.com");
    assert.deepEqual(srs.reverse(fwd), { ok: true, address: "a=b+c@Other.Example" });
  });

  test("the hash is checked without regard to case, with +/ standing for -_ (postsrsd 1.x base64)", () => {
    const srs = srsAt(POSTSRSD_TIME_MS);
    assert.equal(srs.reverse("SRS0=VMYZ=2w=OTHERDOMAIN.COM=test@example.com").ok, true);
    // find an address whose hash has a - or _ and check the +/ spelling verifies too
    for (let i = 0; i < 500; i++) {
      const fwd = srs.forward(`u${i}@x.example`, "example.com");
      const hash = fwd.slice(5, 9);
      if (!/[-_]/.test(hash)) continue;
      const legacy = `SRS0=${hash.replace(/-/g, "+").replace(/_/g, "/")}${fwd.slice(9)}`;
      assert.deepEqual(srs.reverse(legacy), { ok: true, address: `u${i}@x.example` });
      return;
    }
    assert.fail("no hash with - or _ in 500 tries");
  });

  test("a changed host, local part or stamp fails the hash", () => {
    const srs = srsAt(POSTSRSD_TIME_MS);
    assert.deepEqual(srs.reverse("SRS0=vmyz=2W=otherdomain.org=test@example.com"), { ok: false, reason: "bad-hash" });
    assert.deepEqual(srs.reverse("SRS0=vmyz=2W=otherdomain.com=victim@example.com"), { ok: false, reason: "bad-hash" });
    assert.deepEqual(srs.reverse("SRS0=vmyz=2X=otherdomain.com=test@example.com"), { ok: false, reason: "bad-hash" });
    assert.deepEqual(srs.reverse("SRS0=vmy=2W=otherdomain.com=test@example.com"), { ok: false, reason: "bad-hash" });
  });

  test("another secret's address fails; a retired secret still verifies while listed", () => {
    const made = srsAt(POSTSRSD_TIME_MS, ["old secret"]).forward("a@b.example", "example.com");
    assert.deepEqual(srsAt(POSTSRSD_TIME_MS, ["new secret"]).reverse(made), { ok: false, reason: "bad-hash" });
    const rotated = srsAt(POSTSRSD_TIME_MS, ["new secret", "old secret"]);
    assert.deepEqual(rotated.reverse(made), { ok: true, address: "a@b.example" });
    assert.notEqual(rotated.forward("a@b.example", "example.com"), made, "the first secret signs");
  });

  test("an address is valid for maxAgeDays days after its day, then expired", () => {
    const made = srsAt(POSTSRSD_TIME_MS).forward("a@b.example", "example.com");
    assert.equal(srsAt(POSTSRSD_TIME_MS + 21 * DAY).reverse(made).ok, true);
    assert.deepEqual(srsAt(POSTSRSD_TIME_MS + 22 * DAY).reverse(made), { ok: false, reason: "expired" });
    assert.deepEqual(srsAt(POSTSRSD_TIME_MS + 3 * DAY, ["tops3cr3t"], 2).reverse(made), { ok: false, reason: "expired" });
  });

  test("a stamp from a later day (never made by us) counts as a full cycle old", () => {
    const made = srsAt(POSTSRSD_TIME_MS + 5 * DAY).forward("a@b.example", "example.com");
    assert.deepEqual(srsAt(POSTSRSD_TIME_MS).reverse(made), { ok: false, reason: "expired" });
  });

  test("SRS1 wraps an SRS0 sender from another forwarder and leads back to that SRS0 address", () => {
    const first = srsAt(POSTSRSD_TIME_MS, ["first hop"]).forward("orig@origin.example", "hop1.example");
    const ours = srsAt(POSTSRSD_TIME_MS);
    const srs1 = ours.forward(first, "example.com");
    assert.match(srs1, /^SRS1=[A-Za-z0-9_-]{4}=hop1\.example==[A-Za-z0-9_-]{4}=2W=origin\.example=orig@example\.com$/);
    assert.deepEqual(ours.reverse(srs1), { ok: true, address: first });
  });

  test("an SRS1 sender forwarded again keeps its first hop, rehashed with our secret", () => {
    const other = srsAt(POSTSRSD_TIME_MS, ["other"]);
    const srs1 = other.forward(other.forward("o@origin.example", "hop1.example"), "hop2.example");
    const ours = srsAt(POSTSRSD_TIME_MS);
    const again = ours.forward(srs1, "example.com");
    assert.equal(again.slice(9), srs1.slice(9, srs1.lastIndexOf("@")) + "@example.com");
    assert.deepEqual(ours.reverse(again), {
      ok: true,
      address: `SRS0${srs1.slice(srs1.indexOf("==") + 1, srs1.lastIndexOf("@"))}@hop1.example`,
    });
  });

  test("malformed SRS local parts and ordinary ones are told apart", () => {
    const srs = srsAt(POSTSRSD_TIME_MS);
    assert.deepEqual(srs.reverse("SRS0=abcd=2W@example.com"), { ok: false, reason: "malformed" });
    assert.deepEqual(srs.reverse("srs1=abcd@example.com"), { ok: false, reason: "malformed" });
    assert.deepEqual(srs.reverse("srs0.list@example.com"), { ok: false, reason: "not-srs" });
    assert.equal(isSrsLocalPart("SRS0+x=y"), true);
    assert.equal(isSrsLocalPart("srs1-x"), true);
    assert.equal(isSrsLocalPart("srs2=x"), false);
    assert.equal(isSrsLocalPart("SRS0"), false);
  });

  test("a configuration without a secret is refused", () => {
    assert.throws(() => new Srs({ secrets: [] }), /at least one non-empty secret/);
    assert.throws(() => new Srs({ secrets: [""] }), /at least one non-empty secret/);
  });
});
