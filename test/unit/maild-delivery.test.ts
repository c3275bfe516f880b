import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, readdirSync, readFileSync, mkdirSync, linkSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalStore, recoverSpool, newMessageId, HeaderFieldFilter } from "../../server-bootstrap/maild/delivery";
import { isForgedAuthResults } from "../../server-bootstrap/maild/trace-headers";
import { JUNK_FOLDER, maildirName, maildirPath } from "../../server-bootstrap/maild/maildir";

const alice = { local: "alice", domain: "example.org" };
const bob = { local: "bob", domain: "example.org" };
const RAW = "Authentication-Results: mx.example.org; dkim=pass\r\nFrom: x@sender.test\r\nSubject: hi\r\n\r\nbody\r\n";

function newFiles(dataDir: string, mb: typeof alice): string[] {
  return readdirSync(join(maildirPath(dataDir, mb), "new"));
}

async function setup(): Promise<{ dataDir: string; store: LocalStore }> {
  const dataDir = mkdtempSync(join(tmpdir(), "maild-delivery-"));
  const store = new LocalStore(dataDir, () => "mx.example.org");
  await store.init();
  return { dataDir, store };
}

describe("maild local delivery", () => {
  test("a stored message is in each recipient's Maildir/new exactly once, with trace headers on top and forged results removed", async () => {
    const { dataDir, store } = await setup();
    const id = newMessageId();
    writeFileSync(store.rawPath(id), RAW);
    const { size } = await store.store({
      id,
      rawPath: store.rawPath(id),
      prepend: "Received: by mx.example.org\r\n",
      mailboxes: [alice, bob],
      dropHeader: (f) => f.toLowerCase().startsWith("authentication-results: mx.example.org"),
    });
    const expected = "Received: by mx.example.org\r\nFrom: x@sender.test\r\nSubject: hi\r\n\r\nbody\r\n";
    assert.equal(size, expected.length);
    for (const mb of [alice, bob]) {
      const files = newFiles(dataDir, mb);
      assert.deepEqual(files, [maildirName(id, "mx.example.org", size)]);
      assert.equal(readFileSync(join(maildirPath(dataDir, mb), "new", files[0]), "utf8"), expected);
      assert.deepEqual(readdirSync(join(maildirPath(dataDir, mb), "tmp")), []);
      assert.deepEqual(readdirSync(join(maildirPath(dataDir, mb), "cur")), []);
    }
    assert.deepEqual(readdirSync(store.paths.incoming), [], "the spool is empty once committed");
  });

  test("a failure before the commit takes back the copies already linked", async () => {
    const { dataDir, store } = await setup();
    const id = newMessageId();
    writeFileSync(store.rawPath(id), RAW);
    await assert.rejects(
      store.store({
        id,
        rawPath: store.rawPath(id),
        prepend: "",
        mailboxes: [alice, bob],
        beforeCommit: async () => {
          throw new Error("queue full");
        },
      }),
      /queue full/,
    );
    assert.deepEqual(newFiles(dataDir, alice), []);
    assert.deepEqual(newFiles(dataDir, bob), []);
  });

  test("recovery rolls back a delivery that never committed and keeps committed mail", async () => {
    const { dataDir, store } = await setup();
    // a committed message
    const kept = newMessageId();
    writeFileSync(store.rawPath(kept), RAW);
    const { size: keptSize } = await store.store({ id: kept, rawPath: store.rawPath(kept), prepend: "", mailboxes: [alice] });
    // a crash between linking into alice's mailbox and the commit: the .eml is still in the spool
    const crashed = newMessageId();
    const eml = join(store.paths.incoming, `${crashed}.eml`);
    writeFileSync(eml, "Subject: crashed\r\n\r\nx\r\n");
    const name = maildirName(crashed, "mx.example.org", statSync(eml).size);
    linkSync(eml, join(maildirPath(dataDir, alice), "new", name));
    // and a crash during DATA
    writeFileSync(store.rawPath(newMessageId()), "partial");
    mkdirSync(join(maildirPath(dataDir, bob), "new"), { recursive: true });

    const rolledBack: string[] = [];
    const report = await recoverSpool(dataDir, "mx.example.org", [alice, bob], async (id) => void rolledBack.push(id));
    assert.deepEqual(report, { rolledBack: 1, discardedRaw: 1 });
    assert.deepEqual(rolledBack, [crashed]);
    assert.deepEqual(newFiles(dataDir, alice), [maildirName(kept, "mx.example.org", keptSize)]);
    assert.deepEqual(readdirSync(store.paths.incoming), []);
  });

  test("with fields per mailbox, each copy starts with its own fields, then the shared ones; the spool copy has neither", async () => {
    const { dataDir, store } = await setup();
    const id = newMessageId();
    writeFileSync(store.rawPath(id), RAW);
    let queued = "";
    await store.store({
      id,
      rawPath: store.rawPath(id),
      prepend: "Received: by mx.example.org\r\n",
      perMailbox: (mb) => `Return-Path: <x@sender.test>\r\nDelivered-To: ${mb.local}@${mb.domain}\r\n`,
      mailboxes: [alice, bob],
      beforeCommit: async (messagePath) => void (queued = readFileSync(messagePath, "latin1")),
    });
    const shared = "Received: by mx.example.org\r\n" + RAW;
    assert.equal(queued, shared, "what the queue links (the copy sent on) carries no per-mailbox field");
    for (const mb of [alice, bob]) {
      const expected = `Return-Path: <x@sender.test>\r\nDelivered-To: ${mb.local}@example.org\r\n` + shared;
      assert.deepEqual(newFiles(dataDir, mb), [maildirName(id, "mx.example.org", expected.length)]);
      assert.equal(readFileSync(join(maildirPath(dataDir, mb), "new", newFiles(dataDir, mb)[0]), "latin1"), expected);
      assert.deepEqual(readdirSync(join(maildirPath(dataDir, mb), "tmp")), []);
    }
  });

  test("with no mailbox and DATA held in memory, the queue gets the final message and no spool file is written (protocol C)", async () => {
    const { store } = await setup();
    const id = newMessageId();
    const held = [Buffer.from(RAW.slice(0, 30), "latin1"), Buffer.from(RAW.slice(30), "latin1")];
    const queued: string[] = [];
    let spoolDuringQueue: string[] = [];
    const { size } = await store.store({
      id,
      rawPath: store.rawPath(id),
      held,
      prepend: "Received: by mx.example.org\r\n",
      mailboxes: [],
      dropHeader: (f) => f.toLowerCase().startsWith("authentication-results: mx.example.org"),
      beforeCommit: async () => {
        throw new Error("protocol B is not used when the queue takes the message");
      },
      queueMessage: async (message) => {
        spoolDuringQueue = readdirSync(store.paths.incoming);
        queued.push(message.toString("latin1"));
      },
    });
    const expected = "Received: by mx.example.org\r\nFrom: x@sender.test\r\nSubject: hi\r\n\r\nbody\r\n";
    assert.deepEqual(queued, [expected]);
    assert.equal(size, expected.length);
    assert.deepEqual(spoolDuringQueue, []);
    assert.deepEqual(readdirSync(store.paths.incoming), []);
  });

  test("a failure of the queue in protocol C fails the store and leaves no spool file", async () => {
    const { store } = await setup();
    const id = newMessageId();
    await assert.rejects(
      store.store({
        id,
        rawPath: store.rawPath(id),
        held: [Buffer.from(RAW, "latin1")],
        prepend: "",
        mailboxes: [],
        queueMessage: async () => {
          throw new Error("queue full");
        },
      }),
      /queue full/,
    );
    assert.deepEqual(readdirSync(store.paths.incoming), []);
  });

  test("a message with no mailbox that was too large to hold in memory takes protocol B through the spool file", async () => {
    const { store } = await setup();
    const id = newMessageId();
    writeFileSync(store.rawPath(id), RAW);
    let queued = "";
    await store.store({
      id,
      rawPath: store.rawPath(id),
      prepend: "",
      mailboxes: [],
      beforeCommit: async (messagePath) => void (queued = readFileSync(messagePath, "latin1")),
      queueMessage: async () => {
        throw new Error("protocol C needs the message in memory");
      },
    });
    assert.equal(queued, RAW);
    assert.deepEqual(readdirSync(store.paths.incoming), [], "the spool is empty once committed");
  });

  test("recovery removes every copy of an uncommitted delivery, whatever each copy's size, and nothing else", async () => {
    const { dataDir } = await setup();
    const crashed = newMessageId();
    const other = `${crashed.slice(0, -1)}${crashed.endsWith("0") ? "1" : "0"}`;
    writeFileSync(join(dataDir, "spool", "incoming", `${crashed}.eml`), "Subject: crashed\r\n\r\nx\r\n");
    for (const [mb, size] of [
      [alice, 61],
      [bob, 59],
    ] as const) {
      mkdirSync(join(maildirPath(dataDir, mb), "new"), { recursive: true });
      writeFileSync(join(maildirPath(dataDir, mb), "new", maildirName(crashed, "mx.example.org", size)), "x");
      writeFileSync(join(maildirPath(dataDir, mb), "new", maildirName(other, "mx.example.org", size)), "y");
    }
    const report = await recoverSpool(dataDir, "mx.example.org", [alice, bob]);
    assert.equal(report.rolledBack, 1);
    assert.deepEqual(newFiles(dataDir, alice), [maildirName(other, "mx.example.org", 61)]);
    assert.deepEqual(newFiles(dataDir, bob), [maildirName(other, "mx.example.org", 59)]);
  });

  test("spam goes to each recipient's Junk folder (Maildir++ .Junk, marked maildirfolder), not the inbox", async () => {
    const { dataDir, store } = await setup();
    for (const mailboxes of [[alice], [alice, bob]]) {
      const id = newMessageId();
      writeFileSync(store.rawPath(id), RAW);
      const { size } = await store.store({ id, rawPath: store.rawPath(id), prepend: "", mailboxes, folder: JUNK_FOLDER });
      for (const mb of mailboxes) {
        const junk = maildirPath(dataDir, mb, JUNK_FOLDER);
        assert.equal(junk, join(maildirPath(dataDir, mb), ".Junk"));
        assert.ok(readdirSync(join(junk, "new")).includes(maildirName(id, "mx.example.org", size)));
        assert.equal(readFileSync(join(junk, "maildirfolder"), "utf8"), "");
        assert.ok(!readdirSync(join(maildirPath(dataDir, mb), "new")).includes(maildirName(id, "mx.example.org", size)));
      }
    }
  });

  test("recovery rolls back a delivery into Junk that never committed", async () => {
    const { dataDir, store } = await setup();
    const crashed = newMessageId();
    const eml = join(store.paths.incoming, `${crashed}.eml`);
    writeFileSync(eml, "Subject: spam\r\n\r\nx\r\n");
    const name = maildirName(crashed, "mx.example.org", statSync(eml).size);
    const junkNew = join(maildirPath(dataDir, alice, JUNK_FOLDER), "new");
    mkdirSync(junkNew, { recursive: true });
    linkSync(eml, join(junkNew, name));
    const report = await recoverSpool(dataDir, "mx.example.org", [alice], async () => undefined);
    assert.deepEqual(report, { rolledBack: 1, discardedRaw: 0 });
    assert.deepEqual(readdirSync(junkNew), []);
  });

  test("message ids are unique and usable as Maildir names", () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newMessageId()));
    assert.equal(ids.size, 1000);
    for (const id of ids) assert.match(id, /^\d+\.M[0-9a-f]{24}$/);
  });
});

/** Runs the filter over `message` cut into pieces of `size` bytes. */
function filtered(message: string, size: number, drop: (f: string) => boolean): string {
  const f = new HeaderFieldFilter(drop);
  const out: Buffer[] = [];
  const buf = Buffer.from(message, "latin1");
  for (let i = 0; i < buf.length; i += size) out.push(...f.push(buf.subarray(i, i + size)));
  out.push(...f.end());
  return Buffer.concat(out).toString("latin1");
}

describe("the header filter used when a message is written", () => {
  const forged = (f: string) => isForgedAuthResults(f, "mx.example.org");

  test("however the message is cut into chunks, the forged field goes and every other byte stays", () => {
    const message =
      "From: a@b.test\r\nAuthentication-Results: (checked) mx.example.org;\r\n\tdkim=pass\r\nSubject: x\r\n y\r\n\r\nbody\r\nAuthentication-Results: mx.example.org; in the body\r\n";
    const expected = "From: a@b.test\r\nSubject: x\r\n y\r\n\r\nbody\r\nAuthentication-Results: mx.example.org; in the body\r\n";
    for (let size = 1; size <= message.length; size++) assert.equal(filtered(message, size, forged), expected, `chunks of ${size}`);
  });

  test("a forged field after more than 1 MiB of header section is removed", () => {
    const filler = "X-Filler: " + "a".repeat(1000) + "\r\n";
    const message = filler.repeat(1100) + "Authentication-Results: mx.example.org; dmarc=pass\r\nSubject: s\r\n\r\nbody\r\n";
    assert.ok(message.length > 1024 * 1024);
    assert.equal(filtered(message, 65536, forged), filler.repeat(1100) + "Subject: s\r\n\r\nbody\r\n");
  });

  test("a field longer than any decision needs is dropped or kept whole, folded or as one line", () => {
    const longValue = "v".repeat(200_000);
    for (const field of [
      `Authentication-Results: mx.example.org; x=${longValue}\r\n`,
      `Authentication-Results: mx.example.org;\r\n x=${longValue}\r\n`,
    ]) {
      assert.equal(filtered(`A: 1\r\n${field}B: 2\r\n\r\nbody`, 8192, forged), "A: 1\r\nB: 2\r\n\r\nbody");
      const kept = field.replace("mx.example.org", "mx.other.test");
      assert.equal(filtered(`A: 1\r\n${kept}B: 2\r\n\r\nbody`, 8192, forged), `A: 1\r\n${kept}B: 2\r\n\r\nbody`);
    }
  });

  test("a message without a body (no empty line) keeps its last field", () => {
    assert.equal(filtered("A: 1\r\nAuthentication-Results: mx.example.org; x\r\nB: 2", 3, forged), "A: 1\r\nB: 2");
  });
});
