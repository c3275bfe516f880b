import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { LocalInternet } from "../../infra/local-internet/netns";
import { startAcmeTestbed, httpsGetText, type AcmeTestbed } from "../../infra/local-internet/pebble";
import { provider as accountProvider, type AccountOutputs } from "../../components/providers/acme-account";
import { provider, planCertificate, updateCertificate, type CertificateOutputs } from "../../components/providers/acme-certificate";
import { certificateRequestPem } from "../../components/shared/acme/certificate-request";
import { spkiSha256OfKey } from "../../components/shared/acme/certificate-info";
import { recordAcmeRequests } from "../harness/acme-requests";
import { acmeAccountInputs, acmeCertificateInputs } from "../harness/acme-provider-inputs";

function ecKeyPem(): string {
  return generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "sec1", format: "pem" }).toString();
}

const DAY = 86_400_000;
const NAMES = ["mail.example.test", "mta-sts.example.test"];

describe("AcmeCertificate provider methods against pebble + knot (no Pulumi engine)", () => {
  let net: LocalInternet;
  let bed: AcmeTestbed;
  const accountKeyPem = ecKeyPem();
  const certificateKeyPem = ecKeyPem();
  let account: AccountOutputs;
  let inputs: Record<string, unknown>;
  let created: { id: string; outs: CertificateOutputs };

  const status = async (serialHex: string) =>
    (
      JSON.parse(
        await httpsGetText(`https://${bed.ca.ipv4}:15000/cert-status-by-serial/${serialHex.toLowerCase()}`, bed.pebble.listenerCaPem),
      ) as { Status: string }
    ).Status;

  before(async () => {
    net = await LocalInternet.create();
    // 90-day certificates, as Let's Encrypt issues them
    bed = await startAcmeTestbed(net, [{ origin: "example.test.", lines: [] }], { certificateValidityPeriodSeconds: 90 * 86_400 });
    account = ((await accountProvider.create(acmeAccountInputs(bed, accountKeyPem))) as { outs: AccountOutputs }).outs;
    inputs = await acmeCertificateInputs(bed, { accountUrl: account.accountUrl, accountKeyPem }, certificateKeyPem, NAMES);
    created = (await provider.create!(inputs)) as { id: string; outs: CertificateOutputs };
  });
  after(async () => {
    await net?.destroy();
  });

  test("check reports bad inputs by property with a mending message", async () => {
    const r = await provider.check!({}, { ...inputs, names: ["ok.example.test", "Bad.example.test"], dns01: { provider: "route53" } });
    assert.deepEqual(r.failures, [
      { property: "names", reason: 'names[1]: "Bad.example.test" must be lowercase' },
      {
        property: "csrPem",
        reason: "csrPem: asks for mail.example.test, mta-sts.example.test, but names are ok.example.test, Bad.example.test",
      },
      { property: "dns01", reason: 'dns01.provider: "route53" is not one of cloudflare|rfc2136' },
    ]);
  });

  test("create issues the certificate with the account's URL and outputs account URL, chain, validity, key hash", () => {
    const o = created.outs;
    assert.equal(o.accountUrl, account.accountUrl);
    assert.match(o.accountUrl, /\/my-account\//);
    assert.match(o.certificatePem, /^-----BEGIN CERTIFICATE-----/);
    assert.ok((o.certificatePem.match(/BEGIN CERTIFICATE/g) ?? []).length >= 2, "leaf + intermediate");
    assert.deepEqual(o.names, NAMES);
    assert.equal(new Date(o.notAfter).getTime() - new Date(o.notBefore).getTime() >= 90 * DAY - 1000, true);
    assert.equal(o.spkiSha256, spkiSha256OfKey(certificateKeyPem));
    assert.equal(o.issueReason, "new certificate");
  });

  test("the outputs keep no DNS credentials and no certificate key; the account key only because revokeOnDelete is on", async () => {
    const state = JSON.stringify(created.outs);
    assert.equal(state.includes(bed.knot.tsig.secretB64), false);
    assert.equal(state.includes(certificateKeyPem.split("\n")[1]), false);
    assert.equal("dns01" in created.outs, false);
    assert.equal(created.outs.accountKeyPem, accountKeyPem);
    const plain = (await provider.create!({ ...inputs, revokeOnDelete: false })) as { outs: CertificateOutputs };
    assert.deepEqual(
      Object.keys(plain.outs).sort(),
      [
        "accountUrl",
        "certificatePem",
        "directoryUrl",
        "extraCaPem",
        "issueReason",
        "issuer",
        "names",
        "notAfter",
        "notBefore",
        "serialHex",
        "spkiSha256",
      ].sort(),
    );
  });

  test("diff with unchanged inputs right after issuance reports no change", async () => {
    const d = await provider.diff!(created.id, created.outs, inputs);
    assert.equal(d.changes, false);
  });

  test("diff with a changed name asks for an in-place update and says why", async () => {
    const names = [...NAMES, "autoconfig.example.test"];
    const news = { ...inputs, names, csrPem: await certificateRequestPem(certificateKeyPem, names) };
    const d = await provider.diff!(created.id, created.outs, news);
    assert.equal(d.changes, true);
    assert.deepEqual(d.replaces, []);
    const plan = await planCertificate(created.outs as never, news);
    assert.equal(plan.reason, "names changed (+autoconfig.example.test)");
    assert.deepEqual(plan.properties, ["names"]);
  });

  test("diff when a third of the 90-day lifetime remains plans a renewal and says why", async () => {
    const at = new Date(new Date(created.outs.notAfter).getTime() - 29 * DAY);
    const plan = await planCertificate(created.outs as never, inputs, at);
    assert.equal(plan.reissue, true);
    assert.deepEqual(plan.properties, ["renewal"]);
    assert.match(plan.reason, /^a third or less of the 90 days lifetime remains \(29 days left, expires .+\)$/);
    const early = await planCertificate(created.outs as never, inputs, new Date(new Date(created.outs.notAfter).getTime() - 31 * DAY));
    assert.equal(early.reissue, false);
    assert.match(early.reason, /^valid until .+; renewal due from .+/);
  });

  test("a renewal re-issues with the same key and makes no request to the account (no contact update, no lookup)", async () => {
    const log = recordAcmeRequests();
    try {
      const at = new Date(new Date(created.outs.notAfter).getTime() - 10 * DAY);
      const renewed = await updateCertificate(created.outs as never, inputs, at);
      assert.notEqual(renewed.serialHex, created.outs.serialHex);
      assert.equal(renewed.spkiSha256, created.outs.spkiSha256);
      assert.equal(renewed.accountUrl, created.outs.accountUrl);
      assert.match(renewed.issueReason, /a third or less of the 90 days lifetime remains/);
      assert.ok(
        log.requests.some((r) => r.url.includes("/finalize-order/")),
        "the renewal went through pebble",
      );
      const { newAccount } = JSON.parse(await httpsGetText(bed.pebble.directoryUrl, bed.pebble.listenerCaPem)) as { newAccount: string };
      assert.deepEqual(
        log.requests.filter((r) => r.url === account.accountUrl || r.url === newAccount),
        [],
      );
    } finally {
      log.stop();
    }
  });

  test("update with new names re-issues for them, keeping the key", async () => {
    const names = ["mail.example.test", "autoconfig.example.test"];
    const r = await provider.update!(created.id, created.outs, {
      ...inputs,
      names,
      csrPem: await certificateRequestPem(certificateKeyPem, names),
    });
    const outs = r.outs as CertificateOutputs;
    assert.deepEqual(outs.names, names);
    assert.equal(outs.spkiSha256, created.outs.spkiSha256);
    assert.equal(outs.issueReason, "names changed (+autoconfig.example.test, -mta-sts.example.test)");
  });

  test("update turning revokeOnDelete off keeps the certificate and drops the account key from the outputs", async () => {
    const r = await provider.update!(created.id, created.outs, { ...inputs, revokeOnDelete: false });
    const outs = r.outs as CertificateOutputs;
    assert.equal(outs.serialHex, created.outs.serialHex);
    assert.equal("accountKeyPem" in outs, false);
    assert.equal("revokeOnDelete" in outs, false);
  });

  test("state written by the previous provider (a checkout path in __provider) is moved: an update without a new certificate", async () => {
    const legacyProvider = 'exports.handler = __f0; ... modulePath: "/home/alice/mailstack/dist/components/acme-certificate-provider" ...';
    const olds = { ...created.outs, email: "postmaster@example.test", __provider: legacyProvider };
    const d = await provider.diff!(created.id, olds, { ...inputs, __provider: 'loadProvider("mailstack/providers/acme-certificate")' });
    assert.deepEqual({ changes: d.changes, replaces: d.replaces }, { changes: true, replaces: [] });
    const r = await provider.update!(created.id, olds, inputs);
    const outs = r.outs as CertificateOutputs;
    assert.equal(outs.serialHex, created.outs.serialHex);
    assert.equal("email" in outs, false);
  });

  test("a different directory URL is a replacement", async () => {
    const d = await provider.diff!(created.id, created.outs, {
      ...inputs,
      directoryUrl: "https://acme-staging-v02.api.letsencrypt.org/directory",
    });
    assert.deepEqual(d.replaces, ["directoryUrl"]);
  });

  test("delete with revokeOnDelete revokes the certificate at the CA, with the kept account key", async () => {
    const fresh = (await provider.create!(inputs)) as { id: string; outs: CertificateOutputs };
    await provider.delete!(fresh.id, fresh.outs);
    assert.equal(await status(fresh.outs.serialHex), "Revoked");
  });

  test("delete without revokeOnDelete leaves the certificate valid", async () => {
    const fresh = (await provider.create!({ ...inputs, revokeOnDelete: false })) as { id: string; outs: CertificateOutputs };
    await provider.delete!(fresh.id, fresh.outs);
    assert.equal(await status(fresh.outs.serialHex), "Valid");
  });
});
