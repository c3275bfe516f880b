// The box's rspamd configuration (server-bootstrap/spam/rspamd-conf.ts) as rspamd itself reads
// it: `rspamadm configdump` over Debian's /etc/rspamd with our files as $LOCAL_CONFDIR, and the
// blocklist answers matched by rspamd's own Lua (`rspamadm lua`), as rbl.lua matches them. Both run
// in a network namespace of their own: rspamd resolves nothing here.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { blocklistSymbol, rspamdLocalFiles } from "../../server-bootstrap/spam/rspamd-conf";
import { DEFAULT_SPAM_SETTINGS, type SpamSettings } from "../../components/shared/spam-settings";
import { controllerPasswordHash } from "../../components/rspamd-password";

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function rspamadm(args: string[]): string {
  const r = spawnSync("unshare", ["--net", "rspamadm", ...args], { encoding: "utf8" });
  if (r.error) throw new Error(`cannot run rspamadm (Debian package "rspamd"): ${r.error.message}`);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

const HASH = controllerPasswordHash("a controller password");

/** rspamd's whole configuration with our files, as JSON. */
function configDump(settings: SpamSettings): Record<string, any> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mailstack-rspamd-conf-"));
  dirs.push(dir);
  const files = rspamdLocalFiles({
    settings,
    controllerPasswordHash: HASH,
    learnSocket: "/run/rspamd/learn.sock",
    controllerTcp: "localhost:11334",
    rspamdUser: "_rspamd",
    redis: "127.0.0.1:6379",
    dnsServer: "127.0.0.1:53",
    maxMessageBytes: 50 * 1024 * 1024,
  });
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), content);
  }
  return JSON.parse(rspamadm([`--var=LOCAL_CONFDIR=${dir}`, "configdump", "-C", "-c", "/etc/rspamd/rspamd.conf"]));
}

describe("rspamd's configuration with our files", () => {
  const settings: SpamSettings = {
    ...DEFAULT_SPAM_SETTINGS,
    rejectScore: 12.5,
    junkScore: 5,
    greylist: { enabled: true, minScore: 3, delaySeconds: 120 },
    outbound: { burst: 20, perHour: 50 },
  };
  const dump = configDump(settings);
  const worker = (name: string) => (dump.worker as Record<string, any>[]).find((w) => name in w)![name];

  test("the thresholds are the stack's: reject, add header (Junk), greylist", () => {
    assert.deepEqual(dump.actions, { reject: 12.5, add_header: 5, greylist: 3 });
  });

  test("greylisting: first-time senders from minScore up, for delaySeconds", () => {
    assert.deepEqual([dump.greylist.enabled, dump.greylist.greylist_min_score, dump.greylist.timeout], [true, 3, 120]);
  });

  test("the blocklists are exactly the stack's (rspamd's defaults replaced), each scored by its own symbol", () => {
    assert.deepEqual(Object.keys(dump.rbl.rbls).sort(), ["mailstack_bl_dbl_spamhaus_org", "mailstack_bl_zen_spamhaus_org"]);
    const zen = dump.rbl.rbls.mailstack_bl_zen_spamhaus_org;
    assert.deepEqual([zen.rbl, zen.checks, zen.unknown], ["zen.spamhaus.org", ["from"], false]);
    const dbl = dump.rbl.rbls.mailstack_bl_dbl_spamhaus_org;
    assert.deepEqual([dbl.rbl, dbl.no_ip], ["dbl.spamhaus.org", true]);
    assert.deepEqual(dbl.checks.sort(), ["dkim", "emails", "helo", "rdns", "replyto", "urls"]);
  });

  test("one signer and one verifier: rspamd signs nothing (DKIM, ARC) and verifies at most 5 DKIM signatures", () => {
    assert.equal(dump.dkim_signing.enabled, false);
    assert.deepEqual([dump.arc.sign_inbound, dump.arc.sign_authenticated, dump.arc.sign_local], [false, false, false]);
    assert.equal(dump.dkim.max_sigs, 5);
  });

  test("the controller wants the password's hash from everyone but its UNIX socket; loopback is not trusted", () => {
    const c = worker("controller");
    assert.deepEqual([c.password, c.enable_password, c.secure_ip], [HASH, HASH, []]);
    assert.deepEqual(c.bind_socket, ["localhost:11334", "/run/rspamd/learn.sock mode=0600 owner=_rspamd"]);
  });

  test("the milter proxy does not run; the normal worker listens on loopback", () => {
    assert.equal(worker("rspamd_proxy").enabled, false);
    assert.equal(worker("normal").bind_socket, "localhost:11333");
  });

  test("each user may submit a burst, then so many an hour; a limit hit is marked RATELIMITED", () => {
    assert.deepEqual(dump.ratelimit.rates.user_out, { selector: "user.lower", bucket: { burst: 20, rate: "50 / 1h" } });
    assert.equal(dump.ratelimit.info_symbol, "RATELIMITED");
  });

  test("Authentication-Results and the spam verdict are added; other hosts' Authentication-Results are not removed", () => {
    assert.deepEqual(dump.milter_headers.use, ["authentication-results", "x-spam-status", "x-spamd-result"]);
    assert.equal(dump.milter_headers.routines["authentication-results"].remove, false);
  });

  test("DNS goes to the box's own resolver, Bayes and greylisting to the local Redis, one Bayes for all users", () => {
    assert.deepEqual(dump.options.dns.nameserver, ["127.0.0.1:53"]);
    assert.equal(dump.redis.servers, "127.0.0.1:6379");
    assert.equal(dump.neural.enabled, false);
    assert.equal(dump.options.max_message, 51 * 1024 * 1024);
  });

  test("with greylisting off, the greylist module is disabled", () => {
    assert.equal(configDump({ ...settings, greylist: { ...settings.greylist, enabled: false } }).greylist.enabled, false);
  });
});

describe("which blocklist answers count as a listing, matched by rspamd's Lua as rbl.lua does", () => {
  const zen = configDump(DEFAULT_SPAM_SETTINGS).rbl.rbls.mailstack_bl_zen_spamhaus_org;
  const patterns = zen.returncodes[blocklistSymbol("zen.spamhaus.org")] as string[];
  const listed = (answer: string) =>
    rspamadm([
      "lua",
      "-e",
      `for _, v in ipairs({${patterns.map((p) => JSON.stringify(p)).join(",")}}) do if string.find("${answer}", "^" .. v .. "$") then print("listed") return end end print("not listed")`,
    ])
      .trim()
      .split("\n")
      .pop();

  for (const answer of ["127.0.0.2", "127.0.0.4", "127.0.0.10", "127.0.0.254", "127.0.1.2", "127.0.1.106"]) {
    test(`${answer} (RFC 5782 2.1, Spamhaus ZEN and DBL listings) is a listing`, () => assert.equal(listed(answer), "listed"));
  }
  for (const answer of ["127.255.255.254", "127.255.255.255", "127.255.255.252", "127.0.1.255", "10.0.0.2"]) {
    test(`${answer} (an error: open resolver, volume, typo, IP in a domain list) is not`, () => assert.equal(listed(answer), "not listed"));
  }
});
