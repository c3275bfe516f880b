// The merge rules of a one-mailbox or one-folder restore (server-bootstrap/backup/restore.ts): only
// what is missing is added, nothing present changes, and flags mean what they meant.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { dataEntries, folderDir, mergeFolder, withoutKeywords } from "../../server-bootstrap/backup/restore";

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function maildir(files: Record<string, string>): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "backup-merge-"));
  dirs.push(d);
  for (const sub of ["new", "cur", "tmp"]) fs.mkdirSync(path.join(d, sub));
  for (const [rel, content] of Object.entries(files)) fs.writeFileSync(path.join(d, rel), content);
  return d;
}

const list = (d: string) => ["new", "cur"].flatMap((s) => fs.readdirSync(path.join(d, s)).map((n) => `${s}/${n}`)).sort();

describe("restoring into a folder that exists", () => {
  test("adds the messages it lacks, with their flags, and leaves a message present under other flags as it is", async () => {
    const backup = maildir({
      "cur/1.M1.h,S=5:2,S": "one",
      "cur/2.M2.h,S=5:2,FS": "two",
      "new/3.M3.h,S=5": "three",
      "dovecot-keywords": "0 $Important\n",
    });
    const live = maildir({ "cur/1.M1.h,S=5:2,RS": "one", "new/4.M4.h,S=5": "four", "dovecot-keywords": "0 $Important\n" });
    const r = await mergeFolder(backup, live);
    assert.deepEqual(r, { added: 2, present: 1 });
    assert.deepEqual(list(live), ["cur/1.M1.h,S=5:2,RS", "cur/2.M2.h,S=5:2,FS", "new/3.M3.h,S=5", "new/4.M4.h,S=5"]);
    assert.equal(fs.readFileSync(path.join(live, "cur/2.M2.h,S=5:2,FS"), "utf8"), "two");
    // A second run adds nothing.
    assert.deepEqual(await mergeFolder(backup, live), { added: 0, present: 3 });
  });

  test("drops keyword letters when the folder's keyword table differs from the snapshot's, keeping the standard flags", async () => {
    const backup = maildir({ "cur/5.M5.h,S=5:2,Sab": "five", "dovecot-keywords": "0 $Important\n1 $Work\n" });
    const live = maildir({ "dovecot-keywords": "0 $Private\n" });
    await mergeFolder(backup, live);
    assert.deepEqual(list(live), ["cur/5.M5.h,S=5:2,S"]);
  });

  test("withoutKeywords keeps the unique part and the upper-case flags", () => {
    assert.equal(withoutKeywords("1.M1.h,S=5:2,FSab"), "1.M1.h,S=5:2,FS");
    assert.equal(withoutKeywords("1.M1.h,S=5"), "1.M1.h,S=5");
  });
});

describe("folder names", () => {
  test("an IMAP folder name is its Maildir++ directory; INBOX is the Maildir itself", () => {
    assert.deepEqual(["INBOX", "inbox", "Archive", "Lists/Debian"].map(folderDir), ["", "", ".Archive", ".Lists.Debian"]);
  });

  test("names Maildir++ cannot tell apart are refused, naming the form to use", () => {
    for (const bad of ["a.b", "", "Lists//Debian", "/Archive"]) {
      assert.throws(() => folderDir(bad), /give the IMAP name with "\/" between levels \(e\.g\. Archive\/2024\), without "\."/);
    }
  });
});

describe("an empty data directory", () => {
  test("holds nothing but lost+found and the backup job's own directory", async () => {
    const d = maildir({});
    for (const sub of ["new", "cur", "tmp"]) fs.rmdirSync(path.join(d, sub));
    fs.mkdirSync(path.join(d, "lost+found"));
    fs.mkdirSync(path.join(d, ".mailstack-backup"));
    assert.deepEqual(await dataEntries(d), []);
    fs.mkdirSync(path.join(d, "spool"));
    assert.deepEqual(await dataEntries(d), ["spool"]);
    assert.deepEqual(await dataEntries(path.join(d, "missing")), []);
  });
});
