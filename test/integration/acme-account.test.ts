// Issue 13 item 11: the ACME account's contact is written when the account is registered and
// afterwards only when the configured address really changed; issuing never touches the account;
// a refused contact update never fails a run. Let's Encrypt stores no contacts since 2025 and
// plans to remove the update path (letsencrypt/boulder #8198, #8208, #8199). Against pebble, with
// every request acme-client sends counted (test/harness/acme-requests.ts).
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { LocalInternet } from "../../infra/local-internet/netns";
import { startAcmeTestbed, type AcmeTestbed } from "../../infra/local-internet/pebble";
import { provider, type AccountOutputs } from "../../components/providers/acme-account";
import { acmeClient, findOrRegisterAccount, issueCertificate } from "../../components/shared/acme/issue";
import { Rfc2136Dns01Solver } from "../../components/shared/acme/rfc2136-dns01-solver";
import { recordAcmeRequests, type AcmeRequestLog } from "../harness/acme-requests";

const ecKeyPem = () => generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "sec1", format: "pem" }).toString();

describe("AcmeAccount provider and account contacts against pebble", () => {
  let net: LocalInternet;
  let bed: AcmeTestbed;
  let log: AcmeRequestLog;
  const accountKeyPem = ecKeyPem();
  let inputs: Record<string, unknown>;
  let created: { id: string; outs: AccountOutputs };

  /** The contact pebble holds for the account (a POST-as-GET read, RFC 8555 7.3). */
  const contactAtCa = async (keyPem: string, accountUrl: string) => {
    const client = acmeClient({
      directoryUrl: bed.pebble.directoryUrl,
      accountKeyPem: keyPem,
      accountUrl,
      extraCaPem: bed.pebble.listenerCaPem,
    });
    return ((await client.updateAccount()) as { contact?: string[] }).contact ?? [];
  };

  before(async () => {
    net = await LocalInternet.create();
    bed = await startAcmeTestbed(net, [{ origin: "example.test.", lines: [] }]);
    inputs = {
      directoryUrl: bed.pebble.directoryUrl,
      accountKeyPem,
      email: "postmaster@example.test",
      extraCaPem: bed.pebble.listenerCaPem,
    };
    created = (await provider.create(inputs)) as { id: string; outs: AccountOutputs };
  });
  after(async () => {
    await net?.destroy();
  });
  const counting = async <T>(run: () => Promise<T>): Promise<T> => {
    log = recordAcmeRequests();
    try {
      return await run();
    } finally {
      log.stop();
    }
  };

  test("create registers the account with the contact and outputs its URL and the key's thumbprint, not the key", async () => {
    assert.match(created.outs.accountUrl, /\/my-account\//);
    assert.equal(created.id, created.outs.accountUrl);
    assert.deepEqual(await contactAtCa(accountKeyPem, created.outs.accountUrl), ["mailto:postmaster@example.test"]);
    assert.equal(JSON.stringify(created.outs).includes(accountKeyPem.split("\n")[1]), false);
    assert.match(created.outs.accountKeyThumbprint, /^[A-Za-z0-9_-]{43}$/);
  });

  test("create for a key whose account exists with the same contact finds it and updates nothing", async () => {
    const again = await counting(() => provider.create(inputs) as Promise<{ outs: AccountOutputs }>);
    assert.equal(again.outs.accountUrl, created.outs.accountUrl);
    assert.deepEqual(log.contactUpdates(created.outs.accountUrl), []);
  });

  test("an unchanged account: diff reports no change and asks the CA nothing", async () => {
    const d = await counting(() => provider.diff!(created.id, created.outs, inputs));
    assert.deepEqual({ changes: d.changes, replaces: d.replaces }, { changes: false, replaces: [] });
    assert.deepEqual(log.requests, []);
  });

  test("a new key or another directory replaces the account; a new email is an update", async () => {
    assert.deepEqual((await provider.diff!(created.id, created.outs, { ...inputs, accountKeyPem: ecKeyPem() })).replaces, [
      "accountKeyPem",
    ]);
    assert.deepEqual((await provider.diff!(created.id, created.outs, { ...inputs, directoryUrl: "https://ca.example/dir" })).replaces, [
      "directoryUrl",
    ]);
    const d = await provider.diff!(created.id, created.outs, { ...inputs, email: "hostmaster@example.test" });
    assert.deepEqual({ changes: d.changes, replaces: d.replaces }, { changes: true, replaces: [] });
  });

  test("update with the same email sends the CA nothing", async () => {
    const r = await counting(() => provider.update!(created.id, created.outs, { ...inputs }));
    assert.deepEqual(r.outs, created.outs);
    assert.deepEqual(log.requests, []);
  });

  test("update with a new email sends exactly one contact update, and the CA holds the new contact", async () => {
    const r = await counting(() => provider.update!(created.id, created.outs, { ...inputs, email: "hostmaster@example.test" }));
    assert.equal(log.contactUpdates(created.outs.accountUrl).length, 1);
    assert.equal((r.outs as AccountOutputs).email, "hostmaster@example.test");
    assert.deepEqual(await contactAtCa(accountKeyPem, created.outs.accountUrl), ["mailto:hostmaster@example.test"]);
  });

  test("a CA that refuses contact updates: the update still succeeds, with a warning naming the account", async () => {
    const warnings: string[] = [];
    const { warn, error } = console;
    console.warn = (...a: unknown[]) => warnings.push(a.join(" "));
    console.error = (...a: unknown[]) => warnings.push(a.join(" "));
    try {
      const r = await counting(async () => {
        // What Let's Encrypt will answer once the path is gone is not published: any refusal.
        log.refuse(
          (req) => req.url === created.outs.accountUrl && req.payload.includes('"contact"'),
          "urn:ietf:params:acme:error:malformed",
        );
        return provider.update!(created.id, created.outs, { ...inputs, email: "abuse@example.test" });
      });
      assert.equal((r.outs as AccountOutputs).email, "abuse@example.test");
      assert.equal(log.contactUpdates(created.outs.accountUrl).length, 1);
    } finally {
      console.warn = warn;
      console.error = error;
    }
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.match(
      warnings[0],
      new RegExp(
        `AcmeAccount ${created.outs.accountUrl.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: the contact update \\(the configured email changed\\) was refused and is skipped: .*malformed`,
      ),
    );
  });

  test("issuing on the box (no account URL, an email) finds the account and never updates its contact", async () => {
    const solver = new Rfc2136Dns01Solver({
      server: bed.dns.ipv4,
      tsig: { name: bed.knot.tsig.name, algorithm: "hmac-sha256", secretB64: bed.knot.tsig.secretB64 },
      propagation: { timeoutMs: 10_000, resolvers: [bed.dns.ipv4], intervalMs: 100 },
    });
    const issued = await counting(() =>
      issueCertificate({
        directoryUrl: bed.pebble.directoryUrl,
        accountKeyPem,
        email: "someone-else@example.test",
        extraCaPem: bed.pebble.listenerCaPem,
        names: ["mail.example.test"],
        certificateKeyPem: ecKeyPem(),
        solver,
        backoff: { minMs: 100, maxMs: 500, attempts: 20 },
      }),
    );
    assert.equal(issued.accountUrl, created.outs.accountUrl);
    assert.deepEqual(log.contactUpdates(created.outs.accountUrl), []);
  });

  test("findOrRegisterAccount: an existing account is found, not created, and its contact reported as the CA holds it", async () => {
    const client = acmeClient({ directoryUrl: bed.pebble.directoryUrl, accountKeyPem, extraCaPem: bed.pebble.listenerCaPem });
    const found = await findOrRegisterAccount(client, { directoryUrl: bed.pebble.directoryUrl, accountKeyPem, email: "new@example.test" });
    assert.equal(found.created, false);
    assert.equal(found.accountUrl, created.outs.accountUrl);
    assert.deepEqual(found.contact, ["mailto:hostmaster@example.test"]);
  });

  test("create for an existing account whose contact the CA holds differently updates it once", async () => {
    const r = await counting(() => provider.create({ ...inputs, email: "postmaster@example.test" }) as Promise<{ outs: AccountOutputs }>);
    assert.equal(r.outs.accountUrl, created.outs.accountUrl);
    assert.equal(log.contactUpdates(created.outs.accountUrl).length, 1);
    assert.deepEqual(await contactAtCa(accountKeyPem, created.outs.accountUrl), ["mailto:postmaster@example.test"]);
  });
});
