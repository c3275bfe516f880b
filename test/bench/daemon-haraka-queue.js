// Haraka queue plugin for the daemon benchmark: the same durability as maild and Postfix.
// Each message is written to tmp/, fsynced, renamed into new/, and new/ is fsynced before
// Haraka answers 250 (next(OK)). Installed into the bench's Haraka directory as plugins/bench_fsync.js.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

exports.register = function () {
  this.queueDir = process.env.HARAKA_BENCH_QUEUE;
  if (!this.queueDir) throw new Error("bench_fsync: HARAKA_BENCH_QUEUE is not set");
  for (const sub of ["tmp", "new"]) fs.mkdirSync(path.join(this.queueDir, sub), { recursive: true });
};

exports.hook_queue = function (next, connection) {
  const txn = connection.transaction;
  const name = `${Date.now()}.${txn.uuid}`;
  const tmp = path.join(this.queueDir, "tmp", name);
  const final = path.join(this.queueDir, "new", name);
  const newDir = path.join(this.queueDir, "new");
  const fail = (err) => {
    connection.logerror(this, `queue write failed: ${err.message}`);
    next(DENYSOFT, "queue write failed");
  };
  const ws = fs.createWriteStream(tmp, { autoClose: false });
  ws.on("error", fail);
  ws.on("finish", () => {
    fs.fsync(ws.fd, (err) => {
      if (err) return fail(err);
      fs.close(ws.fd, (err2) => {
        if (err2) return fail(err2);
        fs.rename(tmp, final, (err3) => {
          if (err3) return fail(err3);
          fs.open(newDir, "r", (err4, dirFd) => {
            if (err4) return fail(err4);
            fs.fsync(dirFd, (err5) => {
              fs.close(dirFd, () => (err5 ? fail(err5) : next(OK)));
            });
          });
        });
      });
    });
  });
  txn.message_stream.pipe(ws, { line_endings: "\r\n" });
};
