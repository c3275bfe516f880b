// The daemon benchmark's count of verified messages: what it reads from Postfix's log and from
// maild's Maildir (daemon-peers.ts countVerified, daemon.bench.ts countMaildirVerified).
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { countVerified } from "./daemon-peers";
import { countMaildirVerified } from "./daemon.bench";

// Lines as Postfix 3.7's cleanup and qmgr write them with the benchmark's header checks.
const warn = (id: string, header: string, tag: string) =>
  `Dec 06 19:06:34 postfix postfix/cleanup[26678]: ${id}: ${header.startsWith("Received-SPF") ? "warning" : "milter-header-warning"}: header ${header} from load.example.net[198.51.100.3]; from=<load@example.net> to=<bench@example.test> proto=ESMTP helo=<load.example.net>: bench-${tag}-pass`;
const removed = (id: string) => `Dec 06 19:06:35 postfix postfix/qmgr[26567]: ${id}: removed`;

test("a message counts as verified once one header says dkim, spf and dmarc passed, or one of each kind did", () => {
  const log = [
    warn("3B3604341E0", "Authentication-Results: mx; dkim=pass; spf=pass; dmarc=pass", "all"),
    removed("3B3604341E0"),
    warn("3B2934341DF", "Received-SPF: Pass (mailfrom)", "spf"),
    warn("3B2934341DF", "Authentication-Results: mx; dkim=pass", "dkim"),
    warn("3B2934341DF", "Authentication-Results: mx; dmarc=pass", "dmarc"),
    removed("3B2934341DF"),
  ].join("\n");
  assert.equal(countVerified(log), 2);
});

test("a message missing one of the three results is not verified", () => {
  const log = [
    warn("386EE4341CE", "Received-SPF: Pass (mailfrom)", "spf"),
    warn("386EE4341CE", "Authentication-Results: mx; dkim=pass", "dkim"),
    removed("386EE4341CE"),
  ].join("\n");
  assert.equal(countVerified(log), 0);
});

test("a queue id Postfix gives again to a later message counts both messages", () => {
  const all = (id: string) => warn(id, "Authentication-Results: mx; dkim=pass; spf=pass; dmarc=pass", "all");
  const log = [all("66BE9424383"), removed("66BE9424383"), all("66BE9424383"), removed("66BE9424383")].join("\n");
  assert.equal(countVerified(log), 2);
});

test("a later message under a reused queue id does not inherit the earlier one's results", () => {
  const log = [
    warn("66BE9424383", "Received-SPF: Pass (mailfrom)", "spf"),
    warn("66BE9424383", "Authentication-Results: mx; dkim=pass", "dkim"),
    removed("66BE9424383"),
    warn("66BE9424383", "Authentication-Results: mx; dmarc=pass", "dmarc"),
    removed("66BE9424383"),
  ].join("\n");
  assert.equal(countVerified(log), 0);
});

test("maild's messages count when its own Authentication-Results, folded or not, has all three passes", () => {
  const maildir = fs.mkdtempSync(path.join(os.tmpdir(), "verdict-count-"));
  fs.mkdirSync(path.join(maildir, "new"));
  const write = (name: string, headers: string) =>
    fs.writeFileSync(path.join(maildir, "new", name), `${headers}\r\n\r\nbody dkim=pass spf=pass dmarc=pass\r\n`);
  write(
    "1",
    "Authentication-Results: mail.example.test; dkim=pass header.d=example.net;\r\n\tspf=pass smtp.mailfrom=load@example.net;\r\n dmarc=pass header.from=example.net",
  );
  // another host's header does not count, nor do the words in the body
  write(
    "2",
    "Authentication-Results: elsewhere.example; dkim=pass; spf=pass; dmarc=pass\r\nAuthentication-Results: mail.example.test; dkim=pass; spf=pass; dmarc=fail",
  );
  write("3", "Subject: no results");
  try {
    assert.equal(countMaildirVerified(maildir, "mail.example.test"), 1);
  } finally {
    fs.rmSync(maildir, { recursive: true, force: true });
  }
});
