import { test, describe } from "node:test";
import assert from "node:assert/strict";
import Cloudflare from "cloudflare";
import { Unknown, type CallContext, type PropertyMap } from "../../infra/offline/model";
import { cloudflareStandIn, CloudflareWorld, DNS_RECORD, GET_ZONE, type CloudflareRecord } from "../../infra/offline/providers/cloudflare";
import { startCloudflareApi } from "../../infra/offline/providers/cloudflare-http";

const ctx = (name = "record", preview = false): CallContext => ({
  urn: `urn:pulumi:dev::mailstack::cloudflare:index/dnsRecord:DnsRecord::${name}`,
  preview,
  log: () => {},
});

function setup() {
  const changes: { zone: string; names: string[]; kind: string }[] = [];
  const world = new CloudflareWorld({
    onRecordsChanged: (zone, records, change) => void changes.push({ zone, names: records.map((r) => r.name), kind: change.kind }),
  });
  const zone = world.addZone("example.org");
  const cf = cloudflareStandIn(world);
  const create = async (inputs: PropertyMap) => {
    const checked = await cf.check(ctx(), DNS_RECORD, undefined, { zoneId: zone.id, ttl: 1, ...inputs });
    assert.deepEqual(checked.failures, []);
    const { id, outputs } = await cf.create(ctx(), DNS_RECORD, checked.inputs);
    return { id: id as string, inputs: checked.inputs, outputs, stored: world.records.get(id as string)! };
  };
  return { world, zone, cf, create, changes };
}

async function rejectsWith(p: Promise<unknown>, pattern: RegExp) {
  await assert.rejects(p, (e: Error) => {
    assert.match(e.message, pattern);
    return true;
  });
}

describe("cloudflare stand-in: records as Cloudflare stores them", () => {
  test("a second record identical in name, type and content fails with 81058, as the provider reports it", async () => {
    const { create, zone, world } = setup();
    await create({ name: "example.org", type: "TXT", content: '"v=spf1 mx -all"' });
    await rejectsWith(
      create({ name: "example.org", type: "TXT", content: '"v=spf1 mx -all"' }),
      new RegExp(
        `^failed to make http request: POST "https://api\\.cloudflare\\.com/client/v4/zones/${zone.id}/dns_records": 400 Bad Request .*"code":81058,"message":"An identical record already exists\\."`,
      ),
    );
    assert.equal(world.records.size, 1);
  });

  test("a create-before-delete replacement of an identical record fails before the old one is deleted", async () => {
    const { create, world } = setup();
    const old = await create({ name: "mail.example.org", type: "A", content: "203.0.113.10" });
    // The engine creates the replacement first (a renamed logical resource without an alias).
    await rejectsWith(create({ name: "mail.example.org", type: "A", content: "203.0.113.10" }), /81058/);
    assert.deepEqual([...world.records.keys()], [old.id]);
  });

  test("names are stored lower-case, without the trailing dot; the state keeps the name as configured", async () => {
    const { create } = setup();
    const r = await create({ name: "Mail.Example.ORG.", type: "A", content: "203.0.113.10" });
    assert.equal(r.stored.name, "mail.example.org");
    assert.equal(r.outputs.name, "Mail.Example.ORG.");
  });

  test("a name outside the zone is taken as relative: the zone is appended", async () => {
    const { create } = setup();
    const r = await create({ name: "mail.example.net", type: "A", content: "203.0.113.10" });
    assert.equal(r.stored.name, "mail.example.net.example.org");
  });

  test("SRV: content is `weight port target`, priority comes back top-level, a null target is '.' and an empty one is refused", async () => {
    const { create } = setup();
    const srv = await create({
      name: "_imaps._tcp.example.org",
      type: "SRV",
      data: { priority: 0, weight: 1, port: 993, target: "Mail.Example.org." },
      priority: 0,
    });
    assert.deepEqual([srv.stored.content, srv.stored.priority], ["1 993 mail.example.org", 0]);
    assert.equal(srv.outputs.content, "1 993 mail.example.org");
    const none = await create({ name: "_pop3._tcp.example.org", type: "SRV", data: { priority: 0, weight: 0, port: 0, target: "." } });
    assert.equal(none.stored.content, "0 0 .");
    await rejectsWith(
      create({ name: "_pop3s._tcp.example.org", type: "SRV", data: { priority: 0, weight: 0, port: 0, target: "" } }),
      /target is a required data field\./,
    );
  });

  test('CAA: content is `<flags> <tag> "<value>"`; flags stay a number; issuewild ";" is accepted', async () => {
    const { create } = setup();
    const caa = await create({
      name: "example.org",
      type: "CAA",
      data: { flags: 0, tag: "issue", value: "letsencrypt.org; validationmethods=dns-01" },
    });
    assert.equal(caa.stored.content, '0 issue "letsencrypt.org; validationmethods=dns-01"');
    assert.equal(caa.stored.data!.flags, 0);
    const wild = await create({ name: "example.org", type: "CAA", data: { flags: 0, tag: "issuewild", value: ";" } });
    assert.equal(wild.stored.content, '0 issuewild ";"');
  });

  test("TLSA: the content's hex is upper-cased and the data kept as sent; without data fields it is refused", async () => {
    const { create } = setup();
    const hex = "ab".repeat(32);
    const tlsa = await create({
      name: "_25._tcp.mail.example.org",
      type: "TLSA",
      data: { usage: 3, selector: 1, matchingType: 1, certificate: hex },
    });
    assert.equal(tlsa.stored.content, `3 1 1 ${hex.toUpperCase()}`);
    assert.deepEqual(tlsa.stored.data, { usage: 3, selector: 1, matching_type: 1, certificate: hex });
    await rejectsWith(
      create({ name: "_25._tcp.mx.example.org", type: "TLSA", content: `3 1 1 ${hex}` }),
      /TLSA records require data fields/,
    );
    await rejectsWith(
      create({ name: "_25._tcp.mx.example.org", type: "TLSA", data: { selector: 1, matchingType: 1, certificate: hex } }),
      /usage is a required data field\./,
    );
  });

  test("MX needs a priority; its host is stored lower-case without the dot", async () => {
    const { create } = setup();
    await rejectsWith(create({ name: "example.org", type: "MX", content: "mail.example.org" }), /MX records require a priority/);
    const mx = await create({ name: "example.org", type: "MX", content: "Mail.Example.org.", priority: 10 });
    assert.deepEqual([mx.stored.content, mx.stored.priority], ["mail.example.org", 10]);
  });

  test("TTL must be 1 or 60..86400 on a free zone (9021); a string TTL is 9022; comments over 100 characters are 9313", async () => {
    const { create } = setup();
    await rejectsWith(
      create({ name: "a.example.org", type: "A", content: "203.0.113.1", ttl: 30 }),
      /"code":9021,"message":"TTL must be between 60 and 86400 seconds, or 1 for Automatic\."/,
    );
    await rejectsWith(create({ name: "a.example.org", type: "A", content: "203.0.113.1", ttl: "300" }), /"code":9022/);
    await rejectsWith(create({ name: "a.example.org", type: "A", content: "203.0.113.1", comment: "x".repeat(101) }), /"code":9313/);
    const ok = await create({ name: "a.example.org", type: "A", content: "203.0.113.1", ttl: 60, comment: "x".repeat(100) });
    assert.equal(ok.stored.ttl, 60);
  });

  test("a CNAME beside an A is 81053; an A beside a CNAME is 81054", async () => {
    const { create } = setup();
    await create({ name: "www.example.org", type: "A", content: "203.0.113.1" });
    await rejectsWith(create({ name: "www.example.org", type: "CNAME", content: "example.org" }), /"code":81053/);
    await create({ name: "web.example.org", type: "CNAME", content: "example.org" });
    await rejectsWith(create({ name: "web.example.org", type: "AAAA", content: "2001:db8::1" }), /"code":81054/);
  });

  test("an AAAA is stored in RFC 5952 form; a short IPv4 form is refused", async () => {
    const { create } = setup();
    const aaaa = await create({ name: "mail.example.org", type: "AAAA", content: "2001:0DB8:0:0::1" });
    assert.equal(aaaa.stored.content, "2001:db8::1");
    await rejectsWith(create({ name: "x.example.org", type: "A", content: "1.1" }), /valid IPv4 address/);
  });

  test("every change reaches onRecordsChanged with the zone's records", async () => {
    const { create, changes, cf, zone } = setup();
    const r = await create({ name: "mail.example.org", type: "A", content: "203.0.113.10" });
    await cf.delete(ctx(), DNS_RECORD, r.id, r.inputs, r.outputs);
    assert.deepEqual(changes, [
      { zone: "example.org", names: ["mail.example.org"], kind: "create" },
      { zone: "example.org", names: [], kind: "delete" },
    ]);
    assert.equal(zone.name, "example.org");
  });
});

describe("cloudflare stand-in: the DnsRecord lifecycle", () => {
  test("zoneId and type replace; name and content update in place, keeping the record id", async () => {
    const { create, cf, world } = setup();
    const r = await create({ name: "mail.example.org", type: "A", content: "203.0.113.10" });
    const type = await cf.diff(ctx(), DNS_RECORD, r.id, r.inputs, r.outputs, { ...r.inputs, type: "AAAA", content: "2001:db8::1" }, []);
    assert.deepEqual(type.replaceKeys, ["type"]);
    const renamed = { ...r.inputs, name: "mx.example.org", content: "203.0.113.11" };
    const rename = await cf.diff(ctx(), DNS_RECORD, r.id, r.inputs, r.outputs, renamed, []);
    assert.deepEqual([rename.changedKeys.sort(), rename.replaceKeys], [["content", "name"], []]);
    await cf.update(ctx(), DNS_RECORD, r.id, r.inputs, r.outputs, renamed, []);
    assert.deepEqual([world.records.get(r.id)!.name, world.records.get(r.id)!.content], ["mx.example.org", "203.0.113.11"]);
  });

  test("after an update of a data record the state's content stays the old one until a refresh", async () => {
    const { create, cf, world } = setup();
    const r = await create({ name: "example.org", type: "CAA", data: { flags: 0, tag: "issue", value: "letsencrypt.org" } });
    const news = { ...r.inputs, data: { flags: 0, tag: "issue", value: "pki.goog" } };
    const updated = await cf.update(ctx(), DNS_RECORD, r.id, r.inputs, r.outputs, news, []);
    assert.equal(world.records.get(r.id)!.content, '0 issue "pki.goog"');
    assert.equal(updated.outputs.content, '0 issue "letsencrypt.org"');
    const refreshed = await cf.read(ctx(), DNS_RECORD, r.id, news, updated.outputs);
    assert.equal(refreshed!.outputs.content, '0 issue "pki.goog"');
  });

  test("after a refresh, a configured short name against the stored FQDN is not a change", async () => {
    const { create, cf } = setup();
    const r = await create({ name: "mail", type: "A", content: "203.0.113.10" });
    const refreshed = await cf.read(ctx(), DNS_RECORD, r.id, r.inputs, r.outputs);
    assert.equal(refreshed!.outputs.name, "mail.example.org");
    const diff = await cf.diff(ctx(), DNS_RECORD, r.id, r.inputs, refreshed!.outputs, r.inputs, []);
    assert.equal(diff.changes, "none");
  });

  test("preview create: unknown id, and unknown content for a data record", async () => {
    const { cf, zone, world } = setup();
    const srv = await cf.create(ctx("srv", true), DNS_RECORD, {
      zoneId: zone.id,
      name: "_imaps._tcp.example.org",
      type: "SRV",
      ttl: 1,
      data: { priority: 0, weight: 1, port: 993, target: "mail.example.org" },
    });
    assert.deepEqual([srv.id, srv.outputs.content], [Unknown, Unknown]);
    const a = await cf.create(ctx("a", true), DNS_RECORD, {
      zoneId: zone.id,
      name: "mail.example.org",
      type: "A",
      ttl: 1,
      content: "203.0.113.10",
    });
    assert.equal(a.outputs.content, "203.0.113.10");
    assert.equal(world.records.size, 0);
  });

  test("check refuses content together with data", async () => {
    const { cf, zone } = setup();
    const { failures } = await cf.check(ctx(), DNS_RECORD, undefined, {
      zoneId: zone.id,
      name: "x.example.org",
      type: "CAA",
      ttl: 1,
      content: "0 issue x",
      data: { flags: 0 },
    });
    assert.deepEqual(failures, [{ property: "content", reason: 'Attribute "content" cannot be specified when "data" is specified' }]);
  });

  test("import by <zone_id>/<record_id> reads the stored values", async () => {
    const { create, cf, zone } = setup();
    const r = await create({ name: "Mail.example.org", type: "A", content: "203.0.113.10", comment: "the host" });
    const imported = await cf.read(ctx(), DNS_RECORD, `${zone.id}/${r.id}`);
    assert.deepEqual(imported!.inputs, {
      zoneId: zone.id,
      name: "mail.example.org",
      type: "A",
      ttl: 1,
      content: "203.0.113.10",
      comment: "the host",
      __defaults: [],
    });
    assert.equal(await cf.read(ctx(), DNS_RECORD, `${zone.id}/${"0".repeat(32)}`), undefined);
  });

  test("getZone answers from the world by name, and fails for a zone the account does not have", async () => {
    const { cf, zone } = setup();
    const found = await cf.invoke(ctx(), GET_ZONE, { filter: { name: "example.org" } });
    assert.deepEqual([found.id, found.name, found.status], [zone.id, "example.org", "active"]);
    await rejectsWith(cf.invoke(ctx(), GET_ZONE, { filter: { name: "example.net" } }), /found 0/);
  });
});

describe("cloudflare API v4 over HTTP, through the npm SDK", () => {
  test("the SDK lists the zone, creates, reads and deletes a record; the world holds what the API returned", async () => {
    const world = new CloudflareWorld();
    const zone = world.addZone("example.org");
    const api = await startCloudflareApi(world, { tokens: ["tok"] });
    try {
      const client = new Cloudflare({
        apiToken: "tok",
        apiKey: null,
        apiEmail: null,
        userServiceKey: null,
        baseURL: api.baseUrl,
        maxRetries: 0,
      });
      const page = await client.zones.list({ name: "example.org" });
      assert.deepEqual(
        page.result.map((z) => [z.id, z.name]),
        [[zone.id, "example.org"]],
      );
      const created = await client.dns.records.create({
        zone_id: zone.id,
        type: "TXT",
        name: "_acme-challenge.example.org",
        content: '"abc"',
        ttl: 60,
      });
      const read = await client.dns.records.get(created.id, { zone_id: zone.id });
      assert.equal((read as CloudflareRecord).content, '"abc"');
      await client.dns.records.delete(created.id, { zone_id: zone.id });
      assert.equal(world.records.size, 0);
      await assert.rejects(client.dns.records.delete(created.id, { zone_id: zone.id }), (e: Error & { status?: number }) => {
        assert.equal(e.status, 404);
        assert.match(e.message, /81044/);
        return true;
      });
    } finally {
      await api.close();
    }
  });

  test("a wrong token is 403 / 10000; a token for another zone sees no zone and may not touch its records", async () => {
    const world = new CloudflareWorld();
    const zone = world.addZone("example.org");
    world.addZone("example.net");
    const api = await startCloudflareApi(world, { tokens: [{ token: "net-only", zones: ["example.net"] }] });
    try {
      const bad = new Cloudflare({
        apiToken: "nope",
        apiKey: null,
        apiEmail: null,
        userServiceKey: null,
        baseURL: api.baseUrl,
        maxRetries: 0,
      });
      await assert.rejects(
        bad.zones.list({ name: "example.org" }),
        (e: Error & { status?: number }) => e.status === 403 && /10000/.test(e.message),
      );
      const scoped = new Cloudflare({
        apiToken: "net-only",
        apiKey: null,
        apiEmail: null,
        userServiceKey: null,
        baseURL: api.baseUrl,
        maxRetries: 0,
      });
      assert.deepEqual((await scoped.zones.list({ name: "example.org" })).result, []);
      await assert.rejects(
        scoped.dns.records.create({ zone_id: zone.id, type: "TXT", name: "x.example.org", content: '"x"', ttl: 60 }),
        (e: Error & { status?: number }) => e.status === 403 && /9109/.test(e.message),
      );
      assert.equal(world.records.size, 0);
    } finally {
      await api.close();
    }
  });
});
