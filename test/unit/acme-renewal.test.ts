import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { renewalDecision, pointInWindow, isNewerCertificate, renewalTime } from "../../components/shared/acme/renewal-decision";

const DAY = 86_400_000;
const T0 = new Date("2026-01-01T00:00:00Z");
const at = (days: number) => new Date(T0.getTime() + days * DAY);
const names = ["mail.example.org", "mta-sts.example.org"];
const base = { currentNames: names, wantedNames: names };

describe("renewalDecision: the lifetime rule (a third or less remaining)", () => {
  const cases: { lifetimeDays: number; nowDay: number; renew: boolean }[] = [
    { lifetimeDays: 90, nowDay: 59, renew: false },
    { lifetimeDays: 90, nowDay: 60, renew: true },
    { lifetimeDays: 45, nowDay: 29, renew: false },
    { lifetimeDays: 45, nowDay: 30, renew: true },
    { lifetimeDays: 6, nowDay: 3.9, renew: false },
    { lifetimeDays: 6, nowDay: 4, renew: true },
  ];
  for (const c of cases) {
    test(`${c.lifetimeDays}-day certificate on day ${c.nowDay}: renew=${c.renew}`, () => {
      const d = renewalDecision({ ...base, now: at(c.nowDay), notBefore: T0, notAfter: at(c.lifetimeDays) });
      assert.equal(d.renew, c.renew);
      assert.equal(d.renewAt!.getTime(), at((c.lifetimeDays * 2) / 3).getTime());
    });
  }

  test("the reason for a due 90-day certificate names the share, the lifetime, the time left and the expiry", () => {
    const d = renewalDecision({ ...base, now: at(70), notBefore: T0, notAfter: at(90) });
    assert.equal(d.reason, "a third or less of the 90 days lifetime remains (20 days left, expires 2026-04-01T00:00:00Z)");
  });

  test("a 6-day certificate reports hours left when under two days remain", () => {
    const d = renewalDecision({ ...base, now: at(5), notBefore: T0, notAfter: at(6) });
    assert.equal(d.reason, "a third or less of the 6 days lifetime remains (24 hours left, expires 2026-01-07T00:00:00Z)");
  });

  test("the reason for a certificate not yet due says until when it is valid and when renewal starts", () => {
    const d = renewalDecision({ ...base, now: at(10), notBefore: T0, notAfter: at(90) });
    assert.equal(d.reason, "valid until 2026-04-01T00:00:00Z; renewal due from 2026-03-02T00:00:00Z (a third of the lifetime left)");
  });

  test("renewBeforeFraction 0.5 moves renewal to half the lifetime", () => {
    assert.equal(renewalDecision({ ...base, now: at(45), notBefore: T0, notAfter: at(90), renewBeforeFraction: 0.5 }).renew, true);
    assert.equal(renewalDecision({ ...base, now: at(44), notBefore: T0, notAfter: at(90), renewBeforeFraction: 0.5 }).renew, false);
  });

  test("renewBeforeFraction outside (0, 1) is an error naming the input", () => {
    assert.throws(
      () => renewalDecision({ ...base, now: at(1), notBefore: T0, notAfter: at(90), renewBeforeFraction: 1.5 }),
      /renewBeforeFraction: 1\.5 must be a number between 0 and 1/,
    );
  });

  test("an expired certificate is renewed and the reason says since when", () => {
    const d = renewalDecision({ ...base, now: at(100), notBefore: T0, notAfter: at(90) });
    assert.deepEqual([d.renew, d.reason], [true, "expired on 2026-04-01T00:00:00Z"]);
  });

  test("renewalTime is two thirds into the lifetime by default", () => {
    assert.equal(renewalTime(T0, at(90)).getTime(), at(60).getTime());
  });
});

describe("renewalDecision: names and key", () => {
  test("an added and a removed name re-issue at once and are listed", () => {
    const d = renewalDecision({
      now: at(1),
      notBefore: T0,
      notAfter: at(90),
      currentNames: names,
      wantedNames: ["mail.example.org", "autoconfig.example.org"],
    });
    assert.deepEqual([d.renew, d.reason], [true, "names changed (+autoconfig.example.org, -mta-sts.example.org)"]);
  });

  test("names in another order or case are the same certificate", () => {
    const d = renewalDecision({
      now: at(1),
      notBefore: T0,
      notAfter: at(90),
      currentNames: names,
      wantedNames: ["MTA-STS.example.org", "mail.example.org"],
    });
    assert.equal(d.renew, false);
  });

  test("a different certificate key re-issues", () => {
    const d = renewalDecision({ ...base, now: at(1), notBefore: T0, notAfter: at(90), currentSpkiSha256: "aa", wantedSpkiSha256: "bb" });
    assert.deepEqual([d.renew, d.reason], [true, "the certificate key changed"]);
  });
});

describe("renewalDecision: ACME Renewal Information (RFC 9773)", () => {
  const window = { start: at(70), end: at(72) };

  test("before the chosen point in the CA's window: not due, and the window is shown", () => {
    const d = renewalDecision({ ...base, now: at(65), notBefore: T0, notAfter: at(90), ariWindow: window, ariSeed: "cert-a" });
    assert.equal(d.renew, false);
    assert.match(d.reason, /the CA's renewal window \(ARI\) is 2026-03-12T00:00:00Z \.\. 2026-03-14T00:00:00Z, renewal at 2026-03-1[234]T/);
  });

  test("ARI overrides the lifetime rule: day 65 of 90 is not due while the window is later", () => {
    assert.equal(renewalDecision({ ...base, now: at(65), notBefore: T0, notAfter: at(90), ariWindow: window }).renew, false);
  });

  test("after the window's end: due", () => {
    const d = renewalDecision({ ...base, now: at(73), notBefore: T0, notAfter: at(90), ariWindow: window, ariSeed: "cert-a" });
    assert.equal(d.renew, true);
    assert.match(d.reason, /^the CA's renewal window \(ARI, RFC 9773\) is .+; chosen time .+ has come$/);
  });

  test("a window the CA moved into the past (e.g. revocation) makes renewal due now", () => {
    const d = renewalDecision({ ...base, now: at(10), notBefore: T0, notAfter: at(90), ariWindow: { start: at(5), end: at(6) } });
    assert.equal(d.renew, true);
  });

  test("the point in the window is inside it and stable for the same seed", () => {
    const seeds = ["a", "b", "c", "d", "e", "f", "g", "h"];
    for (const s of seeds) {
      const p = pointInWindow(window, s);
      assert.ok(p >= window.start && p <= window.end, `${s}: ${p.toISOString()}`);
      assert.equal(pointInWindow(window, s).getTime(), p.getTime());
    }
    assert.ok(new Set(seeds.map((s) => pointInWindow(window, s).getTime())).size > 1, "different seeds spread out");
  });
});

describe("isNewerCertificate: never install an older certificate", () => {
  test("a later notAfter is newer", () => assert.equal(isNewerCertificate({ notAfter: at(91) }, { notAfter: at(90) }), true));
  test("the same notAfter is not newer", () => assert.equal(isNewerCertificate({ notAfter: at(90) }, { notAfter: at(90) }), false));
  test("an earlier notAfter is not newer", () => assert.equal(isNewerCertificate({ notAfter: at(80) }, { notAfter: at(90) }), false));
  test("anything is newer than nothing", () => assert.equal(isNewerCertificate({ notAfter: at(1) }, undefined), true));
});
